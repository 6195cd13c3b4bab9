//! Tests of the ban book: cost at scale, escalation, scope, the stream, typed refusals, and
//! the rebuild from the ledger's decision events.

use super::*;

fn t(s: i64) -> Timestamp {
    Timestamp::from_secs(s)
}

fn book() -> DecisionBook {
    DecisionBook {
        next_id: 1,
        allowlist: default_allowlist(),
        ..DecisionBook::default()
    }
}

/// 50,000 distinct bans, a lookup per ban, expiry ticks and a save/load: the decisions
/// looked at grow linearly with the bans (a scan per ban made 20,000 bans quadratic).
#[test]
fn fifty_thousand_bans_cost_linear_work() {
    const N: u32 = 50_000;
    let mut b = book();
    let h = Duration::from_secs(3600);
    let ip = |i: u32| IpAddr::V4((0x0a00_0000 + i).into());
    for i in 0..N {
        let now = t(i64::from(i) / 20);
        let d = b.ban(DecisionBook::scope_of(ip(i)), h, h, "r", None, "vigil", now);
        assert!(d.is_ok());
        // The bouncer's question and a tick after every ban.
        assert_eq!(b.covering(ip(i), now).len(), 1);
        assert!(b.expire(now).is_empty());
    }
    let visited = b.index.visited.get();
    assert!(
        visited <= 3 * u64::from(N),
        "{visited} decisions looked at for {N} bans"
    );
    // A ban of a banned network and a range ban are found without a scan too.
    b.index.visited.set(0);
    assert!(
        b.ban(
            Net::parse("10.0.0.7").unwrap(),
            h,
            h,
            "r",
            None,
            "vigil",
            t(3_000)
        )
        .is_err()
    );
    b.ban(
        Net::parse("10.0.0.0/8").unwrap(),
        h,
        h,
        "r",
        None,
        "vigil",
        t(3_000),
    )
    .unwrap();
    assert_eq!(b.covering(ip(7), t(3_000)).len(), 2);
    assert!(b.index.visited.get() <= 6, "{}", b.index.visited.get());
    // Expiry looks only at what it ends, then at what it forgets.
    b.index.visited.set(0);
    assert_eq!(b.expire(t(3600 + 499)).len(), 10_000);
    assert!(b.index.visited.get() <= 10_000, "{}", b.index.visited.get());
    assert_eq!(
        b.active(t(3600 + 499)).len(),
        usize::try_from(N).unwrap() - 10_000 + 1
    );
    // Saved and loaded, the indexes are rebuilt.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("decisions.json");
    b.save(&path).unwrap();
    let mut loaded = DecisionBook::load(&path).unwrap();
    assert_eq!(loaded.covering(ip(20_000), t(3600 + 499)).len(), 2);
    assert!(
        loaded.covering(ip(5), t(3600 + 499)).len() == 1,
        "only the /8 is left"
    );
    let ended = loaded.expire(t(100_000));
    assert_eq!(ended.len(), usize::try_from(N).unwrap() - 10_000 + 1);
    assert_eq!(loaded.expire(t(100_000 + 25 * 3600)).len(), 0);
    assert!(
        loaded.decisions.is_empty(),
        "ended ones are forgotten after a day"
    );
}

#[test]
fn repeat_offenders_get_longer_bans_up_to_the_cap() {
    let mut b = book();
    let ip = Net::parse("203.0.113.5").unwrap();
    let (h, max) = (Duration::from_secs(3600), Duration::from_secs(4 * 3600));
    let d1 = b.ban(ip, h, max, "r", None, "vigil", t(0)).unwrap();
    assert_eq!(d1.until, t(3600));
    assert!(
        b.ban(ip, h, max, "r", None, "vigil", t(10)).is_err(),
        "already banned"
    );
    assert_eq!(b.expire(t(3600)).len(), 1);
    let d2 = b.ban(ip, h, max, "r", None, "vigil", t(4000)).unwrap();
    assert_eq!(d2.until, t(4000 + 7200));
    b.expire(t(20_000));
    let d3 = b.ban(ip, h, max, "r", None, "vigil", t(20_000)).unwrap();
    assert_eq!(d3.until, t(20_000 + 4 * 3600));
    b.expire(t(40_000));
    let d4 = b.ban(ip, h, max, "r", None, "vigil", t(40_000)).unwrap();
    assert_eq!(d4.until, t(40_000 + 4 * 3600), "capped");
}

#[test]
fn ipv6_is_banned_as_its_slash_64_and_the_allowlist_is_never_banned() {
    let mut b = book();
    let net = DecisionBook::scope_of("2001:db8:1:2:aaaa::5".parse().unwrap());
    assert_eq!(net.text(), "2001:db8:1:2::/64");
    let d = b
        .ban(
            net,
            Duration::from_secs(60),
            Duration::from_secs(60),
            "r",
            Some(7),
            "vigil",
            t(0),
        )
        .unwrap();
    assert_eq!(d.scope(), "Range");
    assert_eq!(
        b.covering("2001:db8:1:2:ffff::1".parse().unwrap(), t(1))
            .len(),
        1
    );
    assert!(
        b.covering("2001:db8:1:3::1".parse().unwrap(), t(1))
            .is_empty()
    );
    let lo = DecisionBook::scope_of("127.0.0.1".parse().unwrap());
    assert!(
        b.ban(
            lo,
            Duration::from_secs(60),
            Duration::from_secs(60),
            "r",
            None,
            "x",
            t(0)
        )
        .is_err()
    );
    b.allowlist.push(Net::parse("10.0.0.0/8").unwrap());
    assert!(b.allowed("10.1.2.3".parse().unwrap()));
}

/// The book rebuilt from its ledger events equals the book: active bans, ended ones for
/// the bouncers' stream, escalation history, next id; applying the events twice changes
/// nothing.
#[test]
fn the_book_is_rebuilt_from_its_decision_events() {
    let mut b = book();
    let (h, max) = (Duration::from_secs(3600), Duration::from_secs(8 * 3600));
    let a = Net::parse("203.0.113.5").unwrap();
    let c = Net::parse("198.51.100.0/24").unwrap();
    let mut events = Vec::new();
    let d = b.ban(a, h, max, "r", Some(3), "vigil", t(0)).unwrap();
    events.push(d.to_event("ban", "alert 3", t(0)));
    let d = b.ban(c, h, h, "scanner", None, "ana", t(5)).unwrap();
    events.push(d.to_event("ban", "by hand", t(5)));
    for d in b.expire(t(3600)) {
        events.push(d.to_event("unban", "expired", t(3601)));
    }
    let d = b.ban(a, h, max, "r", Some(4), "vigil", t(4000)).unwrap();
    events.push(d.to_event("ban", "alert 4", t(4000)));
    let d = b.unban(d.id, t(5000)).unwrap();
    events.push(d.to_event("unban", "lifted by ana", t(5000)));
    let d = b.ban(a, h, max, "r", Some(5), "vigil", t(6000)).unwrap();
    events.push(d.to_event("ban", "alert 5", t(6000)));
    let stored: Vec<Event> = events
        .iter()
        .map(|e| Event::from_canonical(&e.to_canonical()).unwrap())
        .collect();

    let mut rebuilt = book();
    assert_eq!(stored.iter().filter(|e| rebuilt.apply_event(e)).count(), 6);
    assert_eq!(stored.iter().filter(|e| rebuilt.apply_event(e)).count(), 0);
    assert_eq!(rebuilt.decisions, b.decisions);
    assert_eq!(rebuilt.offences, b.offences);
    assert_eq!(rebuilt.next_id, b.next_id);
    assert_eq!(rebuilt.active(t(6001)), b.active(t(6001)));
    assert_eq!(
        rebuilt.stream(Some(t(10)), t(6001)),
        b.stream(Some(t(10)), t(6001))
    );
    assert_eq!(rebuilt.covering(a.addr, t(6001)).len(), 1);
    // The fourth ban escalates as the original would: the history was rebuilt too.
    rebuilt.expire(t(100_000));
    let next = rebuilt
        .ban(a, h, max, "r", None, "vigil", t(100_000))
        .unwrap();
    assert_eq!(next.until, t(100_000 + 8 * 3600));
}

#[test]
fn refusals_are_typed() {
    let mut b = book();
    let h = Duration::from_secs(60);
    assert!(matches!(
        Net::parse("10.0.0.0/33"),
        Err(DecisionError::NotANetwork { .. })
    ));
    assert!(matches!(
        Net::parse("example.org"),
        Err(DecisionError::NotANetwork { .. })
    ));
    let lo = Net::parse("127.0.0.1").unwrap();
    assert_eq!(
        b.ban(lo, h, h, "r", None, "x", t(0)),
        Err(DecisionError::Allowlisted("127.0.0.1".into()))
    );
    let ip = Net::parse("192.0.2.1").unwrap();
    let d = b.ban(ip, h, h, "r", None, "x", t(0)).unwrap();
    assert_eq!(
        b.ban(ip, h, h, "r", None, "x", t(1)),
        Err(DecisionError::AlreadyBanned {
            net: "192.0.2.1".into(),
            id: d.id
        })
    );
    assert_eq!(b.unban(99, t(1)), Err(DecisionError::NoActiveDecision(99)));
}

#[test]
fn the_stream_gives_new_and_deleted_since_the_last_poll() {
    let mut b = book();
    let a = Net::parse("198.51.100.1").unwrap();
    let c = Net::parse("198.51.100.2").unwrap();
    let one = Duration::from_secs(10);
    b.ban(a, one, one, "r", None, "vigil", t(0)).unwrap();
    let (new, deleted) = b.stream(None, t(1));
    assert_eq!((new.len(), deleted.len()), (1, 0));
    b.ban(c, one, one, "r", None, "vigil", t(2)).unwrap();
    let (new, deleted) = b.stream(Some(t(1)), t(3));
    assert_eq!((new.len(), deleted.len()), (1, 0));
    assert_eq!(new[0].net, c);
    b.expire(t(10));
    let (new, deleted) = b.stream(Some(t(3)), t(11));
    assert_eq!((new.len(), deleted.len()), (0, 1));
    assert_eq!(deleted[0].net, a);
    let lapi = b.active(t(11))[0].to_lapi(t(11));
    assert_eq!(lapi["scope"], "Ip");
    assert_eq!(lapi["value"], "198.51.100.2");
    assert_eq!(lapi["duration"], "0h0m1s");
}

/// A bouncer that polls after a ban ran out but before the expiry tick marked it ended still
/// gets the deletion on its next poll (CI saw a firewall keep such a ban for good).
#[test]
fn a_ban_that_ran_out_before_the_expiry_tick_is_still_deleted() {
    let mut b = book();
    let a = Net::parse("203.0.113.50").unwrap();
    let ten = Duration::from_secs(10);
    b.ban(a, ten, ten, "r", None, "vigil", t(0)).unwrap();
    assert_eq!(b.stream(None, t(1)).0.len(), 1);
    // The poll at 11 s: the ban ran out at 10 s, no tick has run.
    let (new, deleted) = b.stream(Some(t(1)), t(11));
    assert_eq!((new.len(), deleted.len()), (0, 1), "deleted when it ran out");
    // The tick runs late and dates the end at 10 s; the poll after it repeats nothing.
    assert_eq!(b.expire(t(12)).len(), 1);
    let (new, deleted) = b.stream(Some(t(11)), t(13));
    assert_eq!((new.len(), deleted.len()), (0, 0));
    // A ban lifted by hand is deleted once, on the poll after the lift.
    let c = Net::parse("203.0.113.51").unwrap();
    let id = b.ban(c, ten, ten, "r", None, "vigil", t(14)).unwrap().id;
    assert_eq!(b.stream(Some(t(13)), t(15)).0.len(), 1);
    b.unban(id, t(16)).unwrap();
    assert_eq!(b.stream(Some(t(15)), t(17)).1.len(), 1);
    assert_eq!(b.stream(Some(t(17)), t(30)).1.len(), 0);
}

/// Cluster mode: ban ids are stamped with the detector's lease epoch, so a deposed detector's
/// late ban and its successor's never share an id, even once each has replayed the other's.
#[test]
fn detector_ban_ids_are_unique_across_epochs() {
    let h = Duration::from_secs(3600);
    let per = DECISION_IDS_PER_EPOCH;
    let round_trip = |d: &Decision, now| {
        Event::from_canonical(&d.to_event("ban", "alert", now).to_canonical()).unwrap()
    };
    // Standalone (never stamped): ids from 1, for alert bans too.
    let mut standalone = book();
    let d = standalone
        .ban(
            Net::parse("192.0.2.1").unwrap(),
            h,
            h,
            "r",
            Some(1),
            "vigil",
            t(0),
        )
        .unwrap();
    assert_eq!(d.id, 1);

    let mut deposed = book();
    deposed.stamp_epoch(1);
    let a = deposed
        .ban(
            Net::parse("192.0.2.1").unwrap(),
            h,
            h,
            "r",
            Some(7),
            "vigil",
            t(0),
        )
        .unwrap();
    assert_eq!(a.id, per + 1);

    // The successor has replayed the deposed detector's ban, then takes over at epoch 2.
    let mut successor = book();
    assert!(successor.apply_event(&round_trip(&a, t(0))));
    successor.stamp_epoch(2);
    let b = successor
        .ban(
            Net::parse("192.0.2.2").unwrap(),
            h,
            h,
            "r",
            Some(8),
            "vigil",
            t(1),
        )
        .unwrap();
    assert_eq!(b.id, 2 * per + 1);

    // The deposed detector replays the successor's ban, then publishes a late one: still in
    // its own epoch's range, not after the successor's id.
    assert!(deposed.apply_event(&round_trip(&b, t(1))));
    let late = deposed
        .ban(
            Net::parse("192.0.2.3").unwrap(),
            h,
            h,
            "r",
            Some(9),
            "vigil",
            t(2),
        )
        .unwrap();
    assert_eq!(late.id, per + 2);
    // Both books take each other's decisions: no id was shared.
    assert!(successor.apply_event(&round_trip(&late, t(2))));
    assert_eq!(successor.decisions.len(), 3);

    // A ban by hand keeps the shared counter: after every id the book knows.
    let by_hand = successor
        .ban(
            Net::parse("192.0.2.4").unwrap(),
            h,
            h,
            "scanner",
            None,
            "ana",
            t(3),
        )
        .unwrap();
    assert_eq!(by_hand.id, 2 * per + 2);
    // The detector's counter skips an id of its range the book holds already (a ban by hand
    // on another node that took it).
    let next = successor
        .ban(
            Net::parse("192.0.2.5").unwrap(),
            h,
            h,
            "r",
            Some(10),
            "vigil",
            t(4),
        )
        .unwrap();
    assert_eq!(next.id, 2 * per + 3);

    // A new take-over at an epoch whose range the book holds ids of goes on after them.
    let mut again = book();
    assert!(again.apply_event(&round_trip(&b, t(1))));
    again.stamp_epoch(2);
    let c = again
        .ban(
            Net::parse("192.0.2.6").unwrap(),
            h,
            h,
            "r",
            Some(11),
            "vigil",
            t(5),
        )
        .unwrap();
    assert_eq!(c.id, 2 * per + 2);
}
