//! Which views are being maintained, and the current rows of views whose tables are
//! change logs, which `SELECT` reads: registered, replaced (a restart) and removed (DROP) under one lock, so
//! a view never has two maintainers and a dropped view never gets a new one.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};

use super::result::CurrentRows;
use super::Maintainer;

/// The running maintainers, by view table id.
#[derive(Default)]
pub(crate) struct Maintainers {
    running: Mutex<HashMap<i64, Arc<Maintainer>>>,
    results: ViewResults,
}

/// The current rows of views whose tables are change logs, by view table id: what
/// `SELECT` reads.
#[derive(Default, Clone)]
pub(crate) struct ViewResults(Arc<RwLock<HashMap<i64, Arc<dyn CurrentRows>>>>);

impl ViewResults {
    pub(crate) fn get(&self, view_id: i64) -> Option<Arc<dyn CurrentRows>> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).get(&view_id).cloned()
    }

    fn insert(&self, view_id: i64, result: Arc<dyn CurrentRows>) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).insert(view_id, result);
    }

    fn remove(&self, view_id: i64) {
        self.0.write().unwrap_or_else(|p| p.into_inner()).remove(&view_id);
    }
}

impl Maintainers {
    pub(super) fn get(&self, id: i64) -> Option<Arc<Maintainer>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Registers a maintainer and the current rows it serves to `SELECT`.
    pub(super) fn insert(&self, m: Arc<Maintainer>) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(result) = m.current_rows() {
            self.results.insert(m.view.id(), result);
        }
        running.insert(m.view.id(), m);
    }

    /// Puts `new` in the place of `old` — unless `old` is no longer the registered one or
    /// was stopped (a DROP removed it): then nothing changes and `new` must not run.
    pub(super) fn replace(&self, old: &Maintainer, new: Arc<Maintainer>) -> bool {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        let current = running.get(&old.view.id()).is_some_and(|m| std::ptr::eq(m.as_ref(), old));
        if !current || old.stop.load(Ordering::Acquire) {
            return false;
        }
        if let Some(result) = new.current_rows() {
            self.results.insert(new.view.id(), result);
        }
        running.insert(new.view.id(), new);
        true
    }

    /// Unregisters and stops a view's maintainer, under the lock [`Self::replace`] takes,
    /// so a restart cannot register a successor after it.
    pub(super) fn remove(&self, id: i64) -> Option<Arc<Maintainer>> {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        self.results.remove(id);
        let removed = running.remove(&id);
        if let Some(m) = &removed {
            m.stop.store(true, Ordering::Release);
            m.wake.notify_one();
        }
        removed
    }

    /// Shared with the catalog, which serves `SELECT` over change-log views.
    pub(crate) fn results(&self) -> ViewResults {
        self.results.clone()
    }
}
