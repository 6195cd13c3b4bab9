//! The shared store's logic over an in-memory bucket that behaves as JetStream KV does
//! (revisions, create-once, compare-and-set, a watch that delivers every change to every
//! node). The same logic against a real NATS cluster: `vigil-server`'s cluster tests.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use super::*;
use crate::session::SessionStore;
use crate::token::{AuthError, TokenStore};

/// Key → (value, revision).
type Entries = BTreeMap<String, (Vec<u8>, u64)>;

#[derive(Default)]
struct MemKv {
    /// The last revision, and the entries.
    entries: Mutex<(u64, Entries)>,
    /// Nodes watching this bucket (the auth bucket only).
    watchers: Mutex<Vec<Weak<SharedAuth>>>,
    /// Whether changes are delivered to the watchers (off: a watch that lags).
    deliver: std::sync::atomic::AtomicBool,
}

impl MemKv {
    fn notify(&self, key: &str, value: Option<&[u8]>, revision: u64) {
        if !self.deliver.load(Ordering::SeqCst) {
            return;
        }
        for w in self.watchers.lock().unwrap().iter() {
            if let Some(node) = w.upgrade() {
                node.apply(key, value, revision);
            }
        }
    }

    fn write(&self, key: &str, value: Option<Vec<u8>>, expect: Option<Option<u64>>) -> Option<u64> {
        let mut guard = self.entries.lock().unwrap();
        let (seq, map) = &mut *guard;
        if let Some(expected) = expect
            && map.get(key).map(|(_, r)| *r) != expected
        {
            return None;
        }
        *seq += 1;
        let rev = *seq;
        match &value {
            Some(v) => {
                map.insert(key.to_owned(), (v.clone(), rev));
            }
            None => {
                map.remove(key);
            }
        }
        drop(guard);
        self.notify(key, value.as_deref(), rev);
        Some(rev)
    }
}

impl SharedKv for MemKv {
    fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        Ok(self.entries.lock().unwrap().1.get(key).cloned())
    }
    fn create(&self, key: &str, value: Vec<u8>) -> Result<Option<u64>, StoreError> {
        Ok(self.write(key, Some(value), Some(None)))
    }
    fn update(&self, key: &str, value: Vec<u8>, revision: u64) -> Result<Option<u64>, StoreError> {
        Ok(self.write(key, Some(value), Some(Some(revision))))
    }
    fn put(&self, key: &str, value: Vec<u8>) -> Result<u64, StoreError> {
        Ok(self.write(key, Some(value), None).unwrap())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(key, None, None);
        Ok(())
    }
    fn keys(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let keys: Vec<String> = self
            .entries
            .lock()
            .unwrap()
            .1
            .keys()
            .filter(|k| k.starts_with(prefix))
            .cloned()
            .collect();
        if keys.len() > limit {
            return Err(StoreError::Shared("too many keys".into()));
        }
        Ok(keys)
    }
}

/// A cluster of `n` nodes over one pair of buckets.
fn cluster(n: usize) -> (Arc<MemKv>, Vec<Arc<SharedAuth>>) {
    let auth = Arc::new(MemKv::default());
    auth.deliver.store(true, Ordering::SeqCst);
    let sessions: Arc<MemKv> = Arc::new(MemKv::default());
    let nodes: Vec<Arc<SharedAuth>> = (0..n)
        .map(|_| {
            Arc::new(SharedAuth::new(
                Arc::clone(&auth) as Arc<dyn SharedKv>,
                Arc::clone(&sessions) as Arc<dyn SharedKv>,
            ))
        })
        .collect();
    for node in &nodes {
        auth.watchers.lock().unwrap().push(Arc::downgrade(node));
    }
    (auth, nodes)
}

#[test]
fn a_token_created_on_one_node_works_on_another_and_a_revocation_holds_everywhere() {
    let (auth, nodes) = cluster(3);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let stores: Vec<TokenStore> = (0..3)
        .map(|i| TokenStore::open_shared(dirs[i].path(), Arc::clone(&nodes[i])).unwrap())
        .collect();
    // A lagging watch: node 1 learns of the token only by asking the bucket.
    auth.deliver.store(false, Ordering::SeqCst);
    let (entry, token) = nodes[0].create_token("agent", Role::Ingest).unwrap();
    assert!(
        !String::from_utf8(auth.get(&format!("token.{}", entry.id)).unwrap().unwrap().0)
            .unwrap()
            .contains(&token),
        "only the hash is shared"
    );
    assert_eq!(stores[1].verify(&token).unwrap().name, "agent");
    auth.deliver.store(true, Ordering::SeqCst);
    assert!(stores[0].verify(&token).is_ok());
    assert!(stores[1].is_known(&token));
    assert_eq!(nodes[2].revoke_token("agent").unwrap(), 1);
    assert_eq!(nodes[2].revoke_token("agent").unwrap(), 0, "revoked once");
    // The very next request on the nodes that had verified it is refused.
    assert_eq!(stores[1].verify(&token), Err(AuthError::Invalid));
    assert_eq!(stores[0].verify(&token), Err(AuthError::Invalid));
    assert_eq!(nodes[1].list_tokens().unwrap().len(), 1);
    // Ids that are not 8 hex digits are never looked up (nor are they keys).
    assert_eq!(token_key("../x"), None);
    assert_eq!(stores[2].verify("vgl_zz_secret"), Err(AuthError::Invalid));
}

#[test]
fn entries_that_do_not_decode_or_sit_under_another_key_grant_nothing() {
    let (auth, nodes) = cluster(1);
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_shared(dir.path(), Arc::clone(&nodes[0])).unwrap();
    let (entry, token) = nodes[0].create_token("real", Role::Admin).unwrap();
    // A hostile writer replaces the entry with garbage, then moves a valid entry to another id.
    auth.put(&format!("token.{}", entry.id), b"{not json".to_vec())
        .unwrap();
    assert_eq!(store.verify(&token), Err(AuthError::Invalid));
    let body = serde_json::to_vec(&entry).unwrap();
    auth.put("token.00000000", body).unwrap();
    assert_eq!(store.verify(&token), Err(AuthError::Invalid));
    assert!(nodes[0].tokens().is_empty());
    auth.put(&user_key("eve"), b"[]".to_vec()).unwrap();
    assert!(nodes[0].users().is_empty());
}

#[test]
fn the_first_admin_is_created_once_for_nodes_starting_together() {
    let (_, nodes) = cluster(3);
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let created: Vec<Option<PathBuf>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3)
            .map(|i| {
                let (node, dir) = (&nodes[i], dirs[i].path());
                s.spawn(move || node.ensure_initial_admin(dir).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&PathBuf> = created.iter().flatten().collect();
    assert_eq!(winners.len(), 1, "{created:?}");
    let password = std::fs::read_to_string(winners[0]).unwrap();
    let users = nodes[2].users();
    assert_eq!(users.len(), 1);
    let admin = users::verify_login(&users, "admin", password.trim()).unwrap();
    assert!(admin.must_change_password);
    for (i, dir) in dirs.iter().enumerate() {
        let path = users::initial_password_path(dir.path());
        assert_eq!(
            path.exists(),
            created[i].is_some(),
            "node {i} prints no password"
        );
    }
    assert_eq!(nodes[1].ensure_initial_admin(dirs[1].path()).unwrap(), None);
}

#[test]
fn accounts_change_once_and_the_last_admin_stays() {
    let (_, nodes) = cluster(2);
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = nodes
            .iter()
            .map(|n| {
                s.spawn(move || {
                    n.add_user("ann@example.org", Role::Analyst, "correct horse battery")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Err(UserError::Exists(_))))
    );
    nodes[0]
        .add_user("root", Role::Admin, "a long enough password")
        .unwrap();
    assert!(matches!(
        nodes[1].delete_user("root"),
        Err(UserError::LastAdmin(_))
    ));
    assert!(matches!(
        nodes[1].set_password("nobody", "a long enough password", None),
        Err(UserError::NoSuchUser(_))
    ));
    let ann = nodes[1]
        .set_password(
            "ann@example.org",
            "another good password",
            Some(Role::Viewer),
        )
        .unwrap();
    assert_eq!(ann.role, Role::Viewer);
    let seen = nodes[0].users();
    assert!(users::verify_login(&seen, "ann@example.org", "another good password").is_some());
    assert_eq!(
        nodes[0].delete_user("ann@example.org").unwrap().name,
        "ann@example.org"
    );
    assert_eq!(nodes[1].users().len(), 1);
}

#[test]
fn a_session_opened_on_one_node_holds_on_another_until_logout_or_a_password_change() {
    let (_, nodes) = cluster(2);
    let user = nodes[0]
        .add_user("ann", Role::Analyst, "correct horse battery")
        .unwrap();
    let a = SessionStore::new_shared(
        Arc::clone(&nodes[0]),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    let b = SessionStore::new_shared(
        Arc::clone(&nodes[1]),
        Duration::from_secs(60),
        Duration::from_secs(3600),
    );
    let (cookie, view) = a.create(&user);
    assert_eq!(b.lookup(&cookie).unwrap().csrf, view.csrf);
    assert_eq!(b.remove(&cookie).as_deref(), Some("ann"));
    assert_eq!(a.lookup(&cookie), None, "logged out everywhere");
    let (cookie, _) = b.create(&user);
    assert!(a.lookup(&cookie).is_some());
    nodes[1]
        .set_password("ann", "a different password", None)
        .unwrap();
    assert_eq!(
        a.lookup(&cookie),
        None,
        "a password change ends it everywhere"
    );
    // Idle and maximum ages hold in wall-clock time.
    let short = SessionStore::new_shared(
        Arc::clone(&nodes[0]),
        Duration::from_millis(200),
        Duration::from_secs(3600),
    );
    let user = nodes[0]
        .users()
        .iter()
        .find(|u| u.name == "ann")
        .cloned()
        .unwrap();
    let (cookie, _) = short.create(&user);
    assert!(short.lookup(&cookie).is_some());
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(short.lookup(&cookie), None, "idle expiry");
    assert_eq!(short.lookup("not a cookie"), None);
}

#[test]
fn a_read_that_raced_a_revocation_never_undoes_it() {
    let (auth, nodes) = cluster(1);
    let dir = tempfile::tempdir().unwrap();
    let store = TokenStore::open_shared(dir.path(), Arc::clone(&nodes[0])).unwrap();
    let (entry, token) = nodes[0].create_token("t", Role::Viewer).unwrap();
    let key = format!("token.{}", entry.id);
    let (before, revision) = auth.get(&key).unwrap().unwrap();
    assert_eq!(nodes[0].revoke_token("t").unwrap(), 1);
    // A lookup that read the entry before the revocation answers after the watch applied it.
    assert!(!nodes[0].apply(&key, Some(&before), revision));
    assert!(nodes[0].tokens()[0].revoked.is_some());
    assert_eq!(store.verify(&token), Err(AuthError::Invalid));
}
