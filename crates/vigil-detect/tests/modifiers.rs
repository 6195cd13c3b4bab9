//! Every modifier, condition form and logsource rule, on hand-made events: each test asserts a
//! match and a non-match.

use vigil_detect::{CompileOptions, Document, IssueKind, RuleSet, load_str};
use vigil_event::{Event, Timestamp, Value};

/// Compiles one rule (logsource `product: vigil, service: ingest`, which applies to every event).
fn rule(detection: &str) -> RuleSet {
    rule_with(detection, &CompileOptions::default())
}

fn rule_with(detection: &str, opts: &CompileOptions) -> RuleSet {
    let text = format!(
        "title: T\nid: t-1\nlogsource:\n    product: vigil\n    service: ingest\ndetection:\n{detection}\n"
    );
    let docs: Vec<Document> = load_str(&text, "inline")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("load: {e}\n{text}"));
    let (set, issues) = RuleSet::compile_with(docs, opts);
    let bad: Vec<_> = issues
        .iter()
        .filter(|i| i.kind == IssueKind::Unsupported)
        .collect();
    assert!(bad.is_empty(), "{bad:?}\n{text}");
    assert_eq!(set.len(), 1);
    set
}

/// The reason the rule is unsupported.
fn unsupported(detection: &str) -> String {
    let text = format!(
        "title: T\nlogsource:\n    product: vigil\n    service: ingest\ndetection:\n{detection}\n"
    );
    let mut reasons = Vec::new();
    let mut docs = Vec::new();
    for d in load_str(&text, "inline") {
        match d {
            Ok(d) => docs.push(d),
            Err(e) => reasons.push(e.reason),
        }
    }
    let (set, issues) = RuleSet::compile(docs);
    reasons.extend(
        issues
            .into_iter()
            .filter(|i| i.kind == IssueKind::Unsupported)
            .map(|i| i.reason),
    );
    assert!(set.is_empty(), "expected unsupported: {text}");
    reasons.join("; ")
}

fn ev(fields: &[(&str, Value)]) -> Event {
    let mut e = Event::new(Timestamp::default());
    for (k, v) in fields {
        e.insert(*k, v.clone());
    }
    e
}

fn s(v: &str) -> Value {
    Value::from(v)
}

fn hit(set: &RuleSet, fields: &[(&str, Value)]) -> bool {
    !set.matches(&ev(fields)).is_empty()
}

#[test]
fn plain_values_are_case_insensitive_exact() {
    let r = rule("    sel:\n        Image: 'C:\\Windows\\cmd.exe'\n    condition: sel");
    assert!(hit(&r, &[("Image", s("c:\\windows\\CMD.EXE"))]));
    assert!(!hit(&r, &[("Image", s("c:\\windows\\cmd.exe.bak"))]));
    assert!(!hit(&r, &[("Other", s("c:\\windows\\cmd.exe"))]));
}

#[test]
fn contains_startswith_endswith() {
    let r = rule("    a:\n        F|contains: 'mid'\n    condition: a");
    assert!(hit(&r, &[("F", s("xxMIDxx"))]));
    assert!(!hit(&r, &[("F", s("mi d"))]));
    let r = rule("    a:\n        F|startswith: 'pre'\n    condition: a");
    assert!(hit(&r, &[("F", s("PREfix"))]));
    assert!(!hit(&r, &[("F", s("xprefix"))]));
    let r = rule("    a:\n        F|endswith: '.exe'\n    condition: a");
    assert!(hit(&r, &[("F", s("a.EXE"))]));
    assert!(!hit(&r, &[("F", s("a.exe "))]));
}

#[test]
fn wildcards_and_escapes() {
    let r = rule("    a:\n        F: 'a*b?c'\n    condition: a");
    assert!(hit(&r, &[("F", s("aXXXbYc"))]));
    assert!(hit(&r, &[("F", s("abYc"))]));
    assert!(!hit(&r, &[("F", s("abc"))]));
    let r = rule("    a:\n        F: 'a\\*b'\n    condition: a");
    assert!(hit(&r, &[("F", s("a*b"))]));
    assert!(!hit(&r, &[("F", s("aXb"))]));
    let r = rule("    a:\n        F: '*'\n    condition: a");
    assert!(hit(&r, &[("F", s("anything"))]));
    assert!(!hit(&r, &[("G", s("anything"))]));
}

#[test]
fn value_lists_or_and_all() {
    let r = rule("    a:\n        F:\n            - one\n            - two\n    condition: a");
    assert!(hit(&r, &[("F", s("two"))]));
    assert!(!hit(&r, &[("F", s("three"))]));
    let r = rule(
        "    a:\n        F|contains|all:\n            - one\n            - two\n    condition: a",
    );
    assert!(hit(&r, &[("F", s("two and one"))]));
    assert!(!hit(&r, &[("F", s("only one"))]));
}

#[test]
fn lists_of_maps_are_or_maps_are_and() {
    let r = rule("    a:\n        - F: x\n          G: y\n        - H: z\n    condition: a");
    assert!(hit(&r, &[("F", s("x")), ("G", s("y"))]));
    assert!(hit(&r, &[("H", s("z"))]));
    assert!(!hit(&r, &[("F", s("x"))]));
}

#[test]
fn cased() {
    let r = rule("    a:\n        F|cased: 'MiXed'\n    condition: a");
    assert!(hit(&r, &[("F", s("MiXed"))]));
    assert!(!hit(&r, &[("F", s("mixed"))]));
    let r = rule("    a:\n        F|contains|cased: 'MiX'\n    condition: a");
    assert!(hit(&r, &[("F", s("xxMiXxx"))]));
    assert!(!hit(&r, &[("F", s("xxmixxx"))]));
}

#[test]
fn numbers_match_as_text_and_numbers() {
    let r = rule("    a:\n        EventID: 4688\n    condition: a");
    assert!(hit(&r, &[("EventID", Value::Int(4688))]));
    assert!(hit(&r, &[("EventID", s("4688"))]));
    assert!(!hit(&r, &[("EventID", Value::Int(46880))]));
    let r = rule("    a:\n        EventID: '4688'\n    condition: a");
    assert!(hit(&r, &[("EventID", Value::Int(4688))]));
}

#[test]
fn list_values_match_any_element() {
    let r = rule("    a:\n        tags: evil\n    condition: a");
    assert!(hit(&r, &[("tags", Value::from(vec!["good", "evil"]))]));
    assert!(!hit(&r, &[("tags", Value::from(vec!["good"]))]));
}

#[test]
fn regex_and_flags() {
    let r = rule("    a:\n        F|re: 'ab+c'\n    condition: a");
    assert!(hit(&r, &[("F", s("xxabbbcxx"))]));
    assert!(
        !hit(&r, &[("F", s("xxABBCxx"))]),
        "re is case-sensitive by default"
    );
    let r = rule("    a:\n        F|re|i: 'ab+c'\n    condition: a");
    assert!(hit(&r, &[("F", s("xxABBCxx"))]));
    assert!(!hit(&r, &[("F", s("xxACxx"))]));
    let r = rule("    a:\n        F|re|m: '^second$'\n    condition: a");
    assert!(hit(&r, &[("F", s("first\nsecond\nthird"))]));
    let r = rule("    a:\n        F|re: '^second$'\n    condition: a");
    assert!(!hit(&r, &[("F", s("first\nsecond\nthird"))]));
    let r = rule("    a:\n        F|re|s: 'a.b'\n    condition: a");
    assert!(hit(&r, &[("F", s("a\nb"))]));
    let r = rule("    a:\n        F|re: 'a.b'\n    condition: a");
    assert!(!hit(&r, &[("F", s("a\nb"))]));
    // PCRE's \w is ASCII.
    let r = rule("    a:\n        F|re: '^\\w+$'\n    condition: a");
    assert!(hit(&r, &[("F", s("abc_9"))]));
    assert!(!hit(&r, &[("F", s("äbc"))]));
}

#[test]
fn cidr() {
    let r = rule(
        "    a:\n        DestinationIp|cidr:\n            - '10.0.0.0/8'\n            - 'fe80::/10'\n    condition: a",
    );
    assert!(hit(&r, &[("DestinationIp", s("10.20.30.40"))]));
    assert!(hit(
        &r,
        &[("DestinationIp", Value::Ip("10.1.1.1".parse().unwrap()))]
    ));
    assert!(hit(&r, &[("DestinationIp", s("fe80::1"))]));
    assert!(!hit(&r, &[("DestinationIp", s("11.0.0.1"))]));
    assert!(!hit(&r, &[("DestinationIp", s("not an ip"))]));
}

#[test]
fn base64_and_base64offset() {
    // "whoami" → d2hvYW1p
    let r = rule("    a:\n        F|base64: 'whoami'\n    condition: a");
    assert!(hit(&r, &[("F", s("d2hvYW1p"))]));
    assert!(
        !hit(&r, &[("F", s("D2HVYW1P"))]),
        "encoded values are case-sensitive"
    );
    let r = rule("    a:\n        F|base64|contains: 'whoami'\n    condition: a");
    assert!(hit(&r, &[("F", s("xx d2hvYW1p yy"))]));
    let r = rule("    a:\n        F|base64offset|contains: 'http://'\n    condition: a");
    for prefix in ["", "a", "ab", "abc"] {
        let enc = b64(format!("{prefix}http://evil.example/").as_bytes());
        assert!(
            hit(&r, &[("F", s(&format!("powershell -e {enc}")))]),
            "{prefix:?}"
        );
    }
    assert!(!hit(&r, &[("F", s(&b64(b"https only")))]));
}

#[test]
fn utf16_encodings() {
    // wide + base64offset: PowerShell -EncodedCommand payloads.
    let r = rule(
        "    a:\n        CommandLine|wide|base64offset|contains: 'Invoke-Mimikatz'\n    condition: a",
    );
    for prefix in ["", "x", "xy"] {
        let text: Vec<u8> = format!("{prefix}IEX (Invoke-Mimikatz -DumpCreds)")
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(
            hit(
                &r,
                &[("CommandLine", s(&format!("powershell -enc {}", b64(&text))))]
            ),
            "{prefix:?}"
        );
    }
    assert!(
        !hit(&r, &[("CommandLine", s(&b64(b"Invoke-Mimikatz")))]),
        "UTF-8, not UTF-16"
    );
    let r = rule("    a:\n        F|utf16le|base64: 'ab'\n    condition: a");
    assert!(hit(&r, &[("F", s(&b64(&[b'a', 0, b'b', 0])))]));
    let r = rule("    a:\n        F|utf16be|base64: 'ab'\n    condition: a");
    assert!(hit(&r, &[("F", s(&b64(&[0, b'a', 0, b'b'])))]));
    assert!(!hit(&r, &[("F", s(&b64(&[b'a', 0, b'b', 0])))]));
    let r = rule("    a:\n        F|utf16|base64: 'ab'\n    condition: a");
    assert!(hit(&r, &[("F", s(&b64(&[0xff, 0xfe, b'a', 0, b'b', 0])))]));
}

#[test]
fn windash() {
    let r = rule("    a:\n        CommandLine|contains|windash: ' -enc '\n    condition: a");
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(
            hit(
                &r,
                &[("CommandLine", s(&format!("powershell {dash}enc AAAA")))]
            ),
            "{dash}"
        );
    }
    assert!(!hit(&r, &[("CommandLine", s("powershell +enc AAAA"))]));
    // More dashes than the literal expansion takes go through a regex; same semantics.
    let r = rule("    a:\n        F|windash: '-a -b -c'\n    condition: a");
    assert!(hit(&r, &[("F", s("/a \u{2014}b -c"))]));
    assert!(!hit(&r, &[("F", s("/a \u{2014}b +c"))]));
}

#[test]
fn null_exists_and_empty() {
    let r = rule("    a:\n        F: x\n    f:\n        G: null\n    condition: a and f");
    assert!(hit(&r, &[("F", s("x"))]));
    assert!(hit(&r, &[("F", s("x")), ("G", Value::Null)]));
    assert!(!hit(&r, &[("F", s("x")), ("G", s("set"))]));
    let r = rule("    a:\n        F|exists: true\n    condition: a");
    assert!(
        hit(&r, &[("F", Value::Null)]),
        "exists: present even if null"
    );
    assert!(!hit(&r, &[("G", s("x"))]));
    let r = rule("    a:\n        F: x\n        G|exists: false\n    condition: a");
    assert!(hit(&r, &[("F", s("x"))]));
    assert!(!hit(&r, &[("F", s("x")), ("G", s(""))]));
    let r = rule("    a:\n        F: ''\n    condition: a");
    assert!(hit(&r, &[("F", s(""))]));
    assert!(!hit(&r, &[("F", s("x"))]));
    assert!(!hit(&r, &[("G", s(""))]));
}

#[test]
fn fieldref() {
    let r = rule("    a:\n        TargetFilename|fieldref: Image\n    condition: a");
    assert!(hit(
        &r,
        &[
            ("TargetFilename", s("C:\\A.exe")),
            ("Image", s("c:\\a.exe"))
        ]
    ));
    assert!(!hit(
        &r,
        &[
            ("TargetFilename", s("C:\\A.exe")),
            ("Image", s("c:\\b.exe"))
        ]
    ));
    assert!(!hit(&r, &[("TargetFilename", s("C:\\A.exe"))]));
    let r = rule("    a:\n        F|fieldref|startswith: G\n    condition: a");
    assert!(hit(&r, &[("F", s("abc")), ("G", s("AB"))]));
    assert!(!hit(&r, &[("F", s("abc")), ("G", s("bc"))]));
}

#[test]
fn numeric_comparisons() {
    for (m, yes, no) in [
        ("lt", 9, 10),
        ("lte", 10, 11),
        ("gt", 11, 10),
        ("gte", 10, 9),
    ] {
        let r = rule(&format!("    a:\n        N|{m}: 10\n    condition: a"));
        assert!(hit(&r, &[("N", Value::Int(yes))]), "{m} {yes}");
        assert!(!hit(&r, &[("N", Value::Int(no))]), "{m} {no}");
        assert!(hit(&r, &[("N", s(&yes.to_string()))]), "{m} as text");
    }
    let r = rule("    a:\n        N|gt: 1.5\n    condition: a");
    assert!(hit(&r, &[("N", Value::float(1.6))]));
    assert!(!hit(&r, &[("N", s("abc"))]));
}

#[test]
fn neq() {
    let r = rule(
        "    a:\n        F|exists: true\n    b:\n        F|neq:\n            - x\n            - y\n    condition: a and b",
    );
    assert!(hit(&r, &[("F", s("z"))]));
    assert!(!hit(&r, &[("F", s("X"))]));
    assert!(!hit(&r, &[("F", s("y"))]));
}

#[test]
fn date_parts() {
    let r = rule("    a:\n        When|hour: 3\n    condition: a");
    assert!(hit(&r, &[("When", s("2026-11-22T03:15:00Z"))]));
    assert!(!hit(&r, &[("When", s("2026-11-22T04:15:00Z"))]));
    let r = rule("    a:\n        When|month|gte: 11\n    condition: a");
    assert!(hit(&r, &[("When", s("2026-11-22T03:15:00Z"))]));
    assert!(!hit(&r, &[("When", s("2026-10-22T03:15:00Z"))]));
}

#[test]
fn expand_placeholders() {
    let det = "    a:\n        User|expand: '%Admins%'\n    condition: a";
    assert!(unsupported(det).contains("%Admins%"));
    let mut opts = CompileOptions::default();
    opts.placeholders
        .insert("Admins".into(), vec!["root".into(), "adm_*".into()]);
    let r = rule_with(det, &opts);
    assert!(hit(&r, &[("User", s("ROOT"))]));
    assert!(hit(&r, &[("User", s("adm_bob"))]));
    assert!(!hit(&r, &[("User", s("bob"))]));
}

#[test]
fn keywords() {
    let r = rule(
        "    keywords:\n        - 'event::clear'\n        - 'event::drop'\n    condition: keywords",
    );
    assert!(hit(&r, &[("message", s("mimikatz # EVENT::Clear now"))]));
    assert!(hit(&r, &[("event.original", s("<13>x event::drop"))]));
    assert!(!hit(&r, &[("message", s("event clear"))]));
    // Without message/original (EVTX), every string field is searched.
    assert!(hit(&r, &[("CommandLine", s("x event::drop"))]));
    let r = rule(
        "    keywords:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n    condition: keywords",
    );
    assert!(hit(
        &r,
        &[(
            "message",
            s("Set-OabVirtualDirectory -ExternalUrl http://x")
        )]
    ));
    assert!(!hit(&r, &[("message", s("Set-OabVirtualDirectory"))]));
}

/// A wildcard pattern is confirmed by its regex only when each of its literal pieces occurs
/// in the value; the checks must never turn away a value the regex would take.
#[test]
fn inner_wildcards_with_every_literal_piece() {
    let r = rule(
        "    sel:\n        CommandLine: '*\\rundll32.exe*,Control_RunDLL?*.cpl*'\n    condition: sel",
    );
    assert!(hit(
        &r,
        &[(
            "CommandLine",
            s("C:\\Windows\\RUNDLL32.EXE shell32.dll,control_rundll x.CPL")
        )]
    ));
    assert!(!hit(
        &r,
        &[(
            "CommandLine",
            s("C:\\Windows\\rundll32.exe shell32.dll,Control_RunDLL x")
        )]
    ));
    assert!(!hit(
        &r,
        &[("CommandLine", s("rundll32.exe,Control_RunDLL x.cpl"))]
    ));
    // Non-ASCII values go to the regex unchecked: `K` (Kelvin sign) is `k` ignoring case.
    let r = rule("    sel:\n        A: 'a*k?z'\n    condition: sel");
    assert!(hit(&r, &[("A", s("a \u{212a}-z"))]));
    assert!(hit(&r, &[("A", s("A K-Z"))]));
    assert!(!hit(&r, &[("A", s("a q-z"))]));
    let r = rule("    sel:\n        A|cased: 'Ab*Cd?e'\n    condition: sel");
    assert!(hit(&r, &[("A", s("Ab xx Cd-e"))]));
    assert!(!hit(&r, &[("A", s("ab xx Cd-e"))]));
    assert!(!hit(&r, &[("A", s("Ab xx cd-e"))]));
}

/// Keywords with only `contains` literals search an EVTX record's texts in one pass, joined by
/// NUL: no keyword may match across two texts, each text is still searched, case still does
/// not matter, and a text holding NUL itself changes nothing.
#[test]
fn keywords_never_match_across_two_texts() {
    let r = rule("    keywords:\n        - 'kerberos::golden'\n    condition: keywords");
    assert!(!hit(&r, &[("A", s("x kerberos::")), ("B", s("golden y"))]));
    assert!(!hit(&r, &[("A", s("kerberos::\0golden"))]));
    assert!(hit(
        &r,
        &[("A", s("nothing")), ("B", s("z KERBEROS::Golden"))]
    ));
    assert!(hit(&r, &[("A", s("\0")), ("B", s("kerberos::golden"))]));
    assert!(hit(
        &r,
        &[("L", Value::List(vec![s("a"), s("\u{e9} kerberos::golden")]))]
    ));
    // A keyword with a wildcard inside is confirmed per text, never on the joined texts.
    let r = rule("    keywords:\n        - 'kerberos*golden'\n    condition: keywords");
    assert!(!hit(&r, &[("A", s("kerberos")), ("B", s("golden"))]));
    assert!(hit(&r, &[("A", s("kerberos::golden"))]));
}

#[test]
fn of_quantifiers_with_wildcards() {
    let det = "    selection_a:\n        A: 1\n    selection_b:\n        B: 1\n    _hidden:\n        H: 1\n    filter_x:\n        X: 1\n";
    let r = rule(&format!(
        "{det}    condition: 1 of selection_* and not 1 of filter_*"
    ));
    assert!(hit(&r, &[("A", s("1"))]));
    assert!(!hit(&r, &[("A", s("1")), ("X", s("1"))]));
    assert!(!hit(&r, &[("C", s("1"))]));
    let r = rule(&format!("{det}    condition: all of selection_*"));
    assert!(hit(&r, &[("A", s("1")), ("B", s("1"))]));
    assert!(!hit(&r, &[("A", s("1"))]));
    let r = rule(&format!("{det}    condition: 1 of them"));
    assert!(hit(&r, &[("X", s("1"))]));
    assert!(
        !hit(&r, &[("H", s("1"))]),
        "`them` leaves out identifiers starting with _"
    );
    let r = rule(&format!("{det}    condition: all of them"));
    assert!(hit(&r, &[("A", s("1")), ("B", s("1")), ("X", s("1"))]));
    assert!(!hit(&r, &[("A", s("1")), ("B", s("1"))]));
    let r = rule(&format!("{det}    condition: 2 of them"));
    assert!(hit(&r, &[("A", s("1")), ("X", s("1"))]));
    assert!(!hit(&r, &[("A", s("1"))]));
    let r = rule(&format!("{det}    condition: not selection_a"));
    assert!(hit(&r, &[("B", s("1"))]));
    assert!(!hit(&r, &[("A", s("1"))]));
    let r = rule(&format!(
        "{det}    condition:\n        - selection_a and selection_b\n        - filter_x"
    ));
    assert!(hit(&r, &[("X", s("1"))]));
    assert!(!hit(&r, &[("A", s("1"))]));
}

#[test]
fn unsupported_constructs_say_why() {
    assert!(
        unsupported("    a:\n        F|nonesuch: x\n    condition: a").contains("unknown modifier")
    );
    assert!(
        unsupported("    a:\n        F|re: '(?<=x)y'\n    condition: a")
            .contains("does not compile")
    );
    assert!(unsupported("    a:\n        F: x\n    condition: a and b").contains("`b`"));
    assert!(
        unsupported("    a:\n        F: x\n    condition: a | count() by G > 5")
            .contains("aggregation")
    );
    assert!(
        unsupported("    a:\n        F: x\n    condition: 1 of nothing*").contains("matches no")
    );
    assert!(unsupported("    a:\n        F|base64: 'a*'\n    condition: a").contains("wildcards"));
    assert!(unsupported("    a:\n        F|cidr: 'x/99'\n    condition: a").contains("network"));
    assert!(unsupported("    a:\n        F|gt: abc\n    condition: a").contains("number"));
}

fn b64(bytes: &[u8]) -> String {
    vigil_detect::modifiers::base64_encode(bytes)
}

// --- Logsources and field mapping -------------------------------------------------------------

fn compile_text(text: &str) -> RuleSet {
    let docs: Vec<Document> = load_str(text, "inline")
        .into_iter()
        .collect::<Result<_, _>>()
        .unwrap();
    let (set, issues) = RuleSet::compile(docs);
    assert!(issues.is_empty(), "{issues:?}");
    set
}

#[test]
fn windows_process_creation_sysmon_and_security_4688() {
    let set = compile_text(
        "title: P\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: '\\whoami.exe'\n  condition: sel\n",
    );
    let sysmon = [
        ("Channel", s("Microsoft-Windows-Sysmon/Operational")),
        ("EventID", Value::Int(1)),
        ("Image", s("C:\\Windows\\System32\\whoami.exe")),
    ];
    assert!(hit(&set, &sysmon));
    // Same field in another Sysmon event type: not a process creation.
    let mut other = sysmon.to_vec();
    other[1].1 = Value::Int(11);
    assert!(!hit(&set, &other));
    // Security 4688 names the image NewProcessName.
    assert!(hit(
        &set,
        &[
            ("Channel", s("Security")),
            ("EventID", Value::Int(4688)),
            ("NewProcessName", s("C:\\Windows\\System32\\whoami.exe")),
        ]
    ));
    assert!(!hit(
        &set,
        &[
            ("Channel", s("Security")),
            ("EventID", Value::Int(4624)),
            ("NewProcessName", s("C:\\Windows\\System32\\whoami.exe")),
        ]
    ));
}

#[test]
fn windows_service_channel() {
    let set = compile_text(
        "title: S\nlogsource: {product: windows, service: security}\ndetection:\n  sel:\n    EventID: 1102\n  condition: sel\n",
    );
    assert!(hit(
        &set,
        &[("Channel", s("Security")), ("EventID", Value::Int(1102))]
    ));
    assert!(!hit(
        &set,
        &[("Channel", s("System")), ("EventID", Value::Int(1102))]
    ));
}

#[test]
fn webserver_fields_map_to_access_log_ecs() {
    let set = compile_text(
        "title: W\nlogsource: {category: webserver}\ndetection:\n  sel:\n    cs-method: POST\n    cs-uri-query|contains: '/cgi-bin/'\n    sc-status: 200\n    c-useragent|contains: 'curl'\n  condition: sel\n",
    );
    let ctx = vigil_parse::ParseContext::new(Timestamp::default(), "test");
    let line = r#"203.0.113.5 - - [22/Nov/2026:10:00:00 +0000] "POST /cgi-bin/x.sh?a=1 HTTP/1.1" 200 12 "-" "curl/8.0""#;
    let e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Combined, &ctx);
    assert!(!set.matches(&e).is_empty(), "{e:?}");
    let line = r#"203.0.113.5 - - [22/Nov/2026:10:00:00 +0000] "POST /cgi-bin/x.sh?a=1 HTTP/1.1" 404 12 "-" "curl/8.0""#;
    let e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Combined, &ctx);
    assert!(set.matches(&e).is_empty());
    // A syslog event with the same text is not a web server event.
    let e = ev(&[
        ("url.original", s("/cgi-bin/x")),
        ("vigil.parser", s("syslog")),
    ]);
    assert!(set.matches(&e).is_empty());
}

#[test]
fn linux_keywords_match_the_message_of_the_service() {
    let set = compile_text(
        "title: L\nlogsource: {product: linux, service: sshd}\ndetection:\n  keywords:\n    - 'Corrupted MAC on input'\n  condition: keywords\n",
    );
    let ctx = vigil_parse::ParseContext::new(Timestamp::default(), "test");
    let line = "<38>Nov 22 10:00:00 host sshd[123]: Corrupted MAC on input.";
    let e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Syslog, &ctx);
    assert!(!set.matches(&e).is_empty(), "{e:?}");
    let line = "<38>Nov 22 10:00:00 host cron[123]: Corrupted MAC on input.";
    let e = vigil_parse::parse_line(line.as_bytes(), vigil_parse::Format::Syslog, &ctx);
    assert!(set.matches(&e).is_empty());
}

#[test]
fn filters_suppress_named_rules() {
    let text = "title: R\nid: rule-1\nlogsource: {product: windows, category: process_creation}\ndetection:\n  sel:\n    Image|endswith: '\\rar.exe'\n  condition: sel\n---\ntitle: F\nlogsource: {product: windows, category: process_creation}\nfilter:\n  rules: [rule-1]\n  selection:\n    User|startswith: 'adm_'\n  condition: selection\n";
    let set = compile_text(text);
    let base = [
        ("Channel", s("Microsoft-Windows-Sysmon/Operational")),
        ("EventID", Value::Int(1)),
        ("Image", s("C:\\rar.exe")),
    ];
    assert!(hit(&set, &base));
    let mut admin = base.to_vec();
    admin.push(("User", s("ADM_bob")));
    assert!(!hit(&set, &admin));
}

#[test]
fn many_rules_share_matchers() {
    // 500 rules on one field: each fires only on its own value.
    let mut text = String::new();
    for i in 0..500 {
        text.push_str(&format!(
            "title: R{i}\nid: r{i}\nlogsource: {{product: windows, category: process_creation}}\ndetection:\n  sel:\n    CommandLine|contains: 'token{i:04}x'\n  condition: sel\n---\n"
        ));
    }
    let set = compile_text(&text);
    assert_eq!(set.len(), 500);
    let e = ev(&[
        ("Channel", s("Microsoft-Windows-Sysmon/Operational")),
        ("EventID", Value::Int(1)),
        ("CommandLine", s("run TOKEN0042X and token0499x")),
    ]);
    let ids: Vec<_> = set
        .matches(&e)
        .into_iter()
        .map(|id| set.rule(id).unwrap().meta.id.clone().unwrap())
        .collect();
    assert_eq!(ids, vec!["r42", "r499"]);
}
