//! Work spread over scoped threads: a shared queue of items, taken one at a time so uneven
//! items balance, the calling thread working too. Every parallel loop of the crate (conversion
//! parts, gathers, positioned reads, shard headers) runs through [`try_for_each`].

use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard};

/// Fewer items than this run inline in [`map`]: spawning costs more than a few small items do.
const MIN_PARALLEL_ITEMS: usize = 8;

/// Runs `f` on every item of `work` on up to `threads` threads. The first error stops the
/// threads from taking more items and is returned. With one thread the items run inline,
/// without a scope: on a thread the host created, a scope makes the standard library allocate
/// that thread's handle, which small calls should not pay for. If the system refuses a thread,
/// the others take its share.
pub(crate) fn try_for_each<T: Send, E: Send>(
    work: impl Iterator<Item = T> + Send,
    threads: usize,
    f: impl Fn(T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let queue = Mutex::new(work);
    let failure: Mutex<Option<E>> = Mutex::new(None);
    let run = || loop {
        if lock(&failure).is_some() {
            break;
        }
        let Some(item) = lock(&queue).next() else {
            break;
        };
        if let Err(e) = f(item) {
            lock(&failure).get_or_insert(e);
            break;
        }
    };
    if threads <= 1 {
        run();
    } else {
        std::thread::scope(|s| {
            for _ in 1..threads {
                if std::thread::Builder::new().spawn_scoped(s, run).is_err() {
                    break;
                }
            }
            run();
        });
    }
    match failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// `f` applied to every item on up to `threads` threads, results in input order. Runs inline
/// for one thread or few items.
pub(crate) fn map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    if threads <= 1 || items.len() < MIN_PARALLEL_ITEMS {
        return items.iter().map(f).collect();
    }
    let results: Mutex<Vec<Option<R>>> = Mutex::new((0..items.len()).map(|_| None).collect());
    let done = try_for_each(items.iter().enumerate(), threads, |(i, item)| {
        let r = f(item);
        lock(&results)[i] = Some(r);
        Ok::<(), Infallible>(())
    });
    let Ok(()) = done;
    // Every index was taken by exactly one thread, which stored its result.
    results
        .into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Locks a mutex; a panic while holding one of these cannot leave its value half-written.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order() {
        let items: Vec<u32> = (0..1000).collect();
        assert_eq!(
            super::map(&items, 4, |x| x * 2),
            items.iter().map(|x| x * 2).collect::<Vec<_>>()
        );
        assert!(super::map(&[] as &[u32], 4, |x| *x).is_empty());
    }

    #[test]
    fn returns_the_first_error_and_stops() {
        let seen = std::sync::atomic::AtomicUsize::new(0);
        let r = super::try_for_each(0..10_000u32, 2, |i| {
            seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if i == 10 {
                Err(i)
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(10));
        assert!(seen.load(std::sync::atomic::Ordering::Relaxed) < 10_000);
        assert_eq!(
            super::try_for_each(0..100u32, 1, |_| Ok::<(), ()>(())),
            Ok(())
        );
    }
}
