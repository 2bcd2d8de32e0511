//! Who may run a unit of work next, when many tenants' jobs share one process (the service):
//! at most `global` instances at once in all, at most each tenant's quota at once, and free
//! slots handed to waiting tenants in turn (round robin), so a tenant with many queued units
//! cannot starve one with a few.
//!
//! Written by hand: tokio's semaphores are fair per semaphore (FIFO) but cannot rotate across
//! tenants, and a global FIFO lets one tenant's burst go ahead of everyone.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

#[derive(Default)]
struct Tenant {
    cap: usize,
    running: usize,
    waiting: VecDeque<oneshot::Sender<()>>,
}

struct Inner {
    free: usize,
    tenants: HashMap<String, Tenant>,
    /// Tenants with someone waiting, in the order they get the next free slot.
    turn: VecDeque<String>,
}

/// The process-wide gate; cheap to clone.
#[derive(Clone)]
pub struct UnitGate(Arc<Mutex<Inner>>);

/// A running unit's slot; dropping it frees the slot for the next tenant in turn.
pub struct Permit {
    gate: UnitGate,
    tenant: String,
}

/// One tenant's way through the gate (what a job carries).
#[derive(Clone)]
pub struct TenantGate {
    gate: UnitGate,
    tenant: String,
}

impl UnitGate {
    pub fn new(global: usize) -> Self {
        UnitGate(Arc::new(Mutex::new(Inner { free: global.max(1), tenants: HashMap::new(), turn: VecDeque::new() })))
    }

    /// The gate as `tenant` sees it, with at most `cap` units of it running at once.
    pub fn tenant(&self, tenant: &str, cap: usize) -> TenantGate {
        self.0.lock().unwrap().tenants.entry(tenant.to_string()).or_default().cap = cap.max(1);
        TenantGate { gate: self.clone(), tenant: tenant.to_string() }
    }

    /// Units running now: in all, and the tenant's.
    pub fn running(&self, tenant: &str) -> usize {
        self.0.lock().unwrap().tenants.get(tenant).map_or(0, |t| t.running)
    }

    /// Hands free slots to waiting tenants in turn. A waiter that gave up (its receiver is
    /// gone) is skipped without taking the slot.
    fn dispatch(inner: &mut Inner) {
        let mut passes = inner.turn.len();
        while inner.free > 0 && passes > 0 {
            let Some(name) = inner.turn.pop_front() else { break };
            let t = inner.tenants.get_mut(&name).expect("a tenant in turn is known");
            if t.running >= t.cap {
                // At its quota: it keeps its place in the rotation for later.
                inner.turn.push_back(name);
                passes -= 1;
                continue;
            }
            while let Some(w) = t.waiting.pop_front() {
                if w.send(()).is_ok() {
                    t.running += 1;
                    inner.free -= 1;
                    break;
                }
            }
            if !t.waiting.is_empty() {
                inner.turn.push_back(name);
            }
            passes = inner.turn.len();
        }
    }
}

impl TenantGate {
    /// Waits for a slot: the tenant's own quota and one of the global slots, in turn.
    pub async fn acquire(&self) -> Permit {
        let rx = {
            let mut inner = self.gate.0.lock().unwrap();
            let (tx, rx) = oneshot::channel();
            let inner = &mut *inner;
            let t = inner.tenants.get_mut(&self.tenant).expect("registered by UnitGate::tenant");
            t.waiting.push_back(tx);
            if !inner.turn.contains(&self.tenant) {
                inner.turn.push_back(self.tenant.clone());
            }
            UnitGate::dispatch(inner);
            rx
        };
        // Dropped while waiting: the sender fails and the slot goes to the next waiter.
        let mut waiting = Waiting { gate: &self.gate, tenant: &self.tenant, rx: Some(rx) };
        waiting.rx.as_mut().expect("set above").await.expect("the gate never drops a waiter's sender");
        waiting.rx = None;
        Permit { gate: self.gate.clone(), tenant: self.tenant.clone() }
    }
}

/// A waiter; dropped after the grant but before `acquire` returned, it gives the slot back.
struct Waiting<'a> {
    gate: &'a UnitGate,
    tenant: &'a str,
    rx: Option<oneshot::Receiver<()>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        // Under the lock, so that no grant slips in between the check and the drop.
        let granted = {
            let _inner = self.gate.0.lock().unwrap();
            let granted = rx.try_recv().is_ok();
            drop(rx);
            granted
        };
        if granted {
            self.gate.release(self.tenant);
        }
    }
}

impl UnitGate {
    fn release(&self, tenant: &str) {
        let mut inner = self.0.lock().unwrap();
        inner.free += 1;
        if let Some(t) = inner.tenants.get_mut(tenant) {
            t.running -= 1;
        }
        UnitGate::dispatch(&mut inner);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release(&self.tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    #[tokio::test]
    async fn slots_go_round_robin_across_tenants_within_each_quota() {
        let gate = UnitGate::new(2);
        let a = gate.tenant("a", 8);
        let b = gate.tenant("b", 8);
        let order = Arc::new(Mutex::new(Vec::new()));
        // Tenant a holds both slots, then queues 4 more; b queues 2 after them.
        let held = vec![a.acquire().await, a.acquire().await];
        let mut tasks = Vec::new();
        for (who, gate) in [("a", &a), ("a", &a), ("a", &a), ("a", &a), ("b", &b), ("b", &b)] {
            let (gate, order) = (gate.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let p = gate.acquire().await;
                order.lock().unwrap().push(who);
                tokio::time::sleep(Duration::from_millis(30)).await;
                drop(p);
            }));
            settle().await;
        }
        drop(held);
        for t in tasks {
            t.await.unwrap();
        }
        let order = order.lock().unwrap().clone();
        // b's first unit goes within the first two grants, not after all of a's.
        assert_eq!(&order[..4], &["a", "b", "a", "b"], "{order:?}");
        assert_eq!(order.len(), 6);
    }

    #[tokio::test]
    async fn a_tenant_never_runs_more_than_its_quota_and_others_use_the_rest() {
        let gate = UnitGate::new(4);
        let a = gate.tenant("a", 1);
        let b = gate.tenant("b", 4);
        let a1 = a.acquire().await;
        let a2 = tokio::spawn({
            let a = a.clone();
            async move { a.acquire().await }
        });
        settle().await;
        assert!(!a2.is_finished(), "a second unit of a tenant with quota 1 must wait");
        // The other three global slots are b's at once.
        let bs = vec![b.acquire().await, b.acquire().await, b.acquire().await];
        assert_eq!(gate.running("b"), 3);
        drop(a1);
        let _a2 = a2.await.unwrap();
        assert_eq!(gate.running("a"), 1);
        drop(bs);
        assert_eq!(gate.running("b"), 0);
    }

    #[tokio::test]
    async fn a_waiter_that_gives_up_does_not_keep_a_slot() {
        let gate = UnitGate::new(1);
        let a = gate.tenant("a", 2);
        let held = a.acquire().await;
        // Gives up while waiting (a cancelled job).
        let gave_up = tokio::time::timeout(Duration::from_millis(20), a.acquire()).await;
        assert!(gave_up.is_err());
        drop(held);
        // The slot is free again, not leaked to the waiter that left.
        let again = tokio::time::timeout(Duration::from_millis(200), a.acquire()).await;
        assert!(again.is_ok(), "the freed slot must be grantable");
        assert_eq!(gate.running("a"), 1);
    }
}
