//! One search, whole process, the way `vigil search` runs it (open the ledger and the index,
//! search, print, exit) without the rest of the `vigil` binary: for timing the cold path of a
//! search side by side across builds (`bench/search-needle` accepts it in place of `vigil`).
//!
//! ```text
//! cargo run --release -p vigil-index --example search_once -- search --data-dir DATA_DIR QUERY
//! ```

use vigil_event::Timestamp;
use vigil_query::{Limits, parse};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .position(|a| a == "--data-dir")
        .and_then(|i| args.get(i + 1))
        .ok_or("usage: search --data-dir DATA_DIR QUERY")?;
    let query = args.last().ok_or("no query")?;
    let pipeline = parse(query).map_err(|e| e.message)?;
    let limits = Limits {
        from: None,
        to: None,
        max_rows: 1000,
        now: Timestamp::now(),
    };
    let result = vigil_index::run_on_data_dir(std::path::Path::new(dir), &pipeline, limits)?;
    println!("{}", result.columns.join(","));
    for row in &result.rows {
        let cells: Vec<String> = row.iter().map(ToString::to_string).collect();
        println!("{}", cells.join(","));
    }
    Ok(())
}
