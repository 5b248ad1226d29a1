//! `run_parallel`: a scoped worker pool over a bounded crossbeam channel.
//!
//! The calling thread feeds jobs into the channel in the order given (callers put the largest
//! files first, so the pool does not end waiting on one big file) while `workers` scoped threads
//! take them. The first failure stops the feed: jobs still queued are dropped unstarted, jobs
//! already running finish, and that first error is what the caller gets. Nothing here logs or
//! knows what a job is.

use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crossbeam_channel::bounded;

use crate::error::{Error, ErrorKind, Result};

/// Runs `work(worker_index, job)` for every job on `workers` threads (at least one, at most one
/// per job) and returns the results in job order.
///
/// `worker_index` is in `0..workers`, so a job can use a per-worker resource (a remote channel,
/// a buffer). On the first error no further job starts; running jobs finish; the first error is
/// returned. A panicking job counts as a failure and is reported as an `Execute` error.
pub fn run_parallel<J, R, F>(jobs: Vec<J>, workers: usize, work: F) -> Result<Vec<R>>
where
    J: Send,
    R: Send,
    F: Fn(usize, J) -> Result<R> + Sync,
{
    let count = jobs.len();
    if count == 0 {
        return Ok(Vec::new());
    }
    let workers = workers.clamp(1, count);
    // Room for one job per worker: enough to keep every worker busy, few enough that a failure
    // leaves little queued work to throw away.
    let (sender, receiver) = bounded::<(usize, J)>(workers);
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |err: Error| {
        if let Ok(mut slot) = first_error.lock()
            && slot.is_none()
        {
            *slot = Some(err);
        }
        failed.store(true, Ordering::SeqCst);
    };

    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(count).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|index| {
                let receiver = receiver.clone();
                let (work, failed, fail) = (&work, &failed, &fail);
                scope.spawn(move || {
                    let mut done = Vec::new();
                    for (position, job) in receiver.iter() {
                        // Drain without starting anything once a job has failed.
                        if failed.load(Ordering::SeqCst) {
                            continue;
                        }
                        // A panic stops the queue like an error instead of surfacing only
                        // when the pool is joined, after every other job has run.
                        let outcome = panic::catch_unwind(AssertUnwindSafe(|| work(index, job)));
                        match outcome {
                            Ok(Ok(result)) => done.push((position, result)),
                            Ok(Err(err)) => fail(err),
                            Err(_) => fail(Error::new(ErrorKind::Execute, "worker job panicked")),
                        }
                    }
                    done
                })
            })
            .collect();
        drop(receiver);

        for job in jobs.into_iter().enumerate() {
            if failed.load(Ordering::SeqCst) || sender.send(job).is_err() {
                break;
            }
        }
        drop(sender);

        for handle in handles {
            match handle.join() {
                Ok(done) => {
                    for (position, result) in done {
                        slots[position] = Some(result);
                    }
                }
                Err(_) => fail(Error::new(ErrorKind::Execute, "worker thread panicked")),
            }
        }
    });

    if let Some(err) = first_error.into_inner().ok().flatten() {
        return Err(err);
    }
    if failed.load(Ordering::SeqCst) {
        return Err(Error::new(ErrorKind::Execute, "worker pool failed"));
    }
    slots
        .into_iter()
        .collect::<Option<Vec<R>>>()
        .ok_or_else(|| Error::new(ErrorKind::Assert, "worker pool lost a job's result"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    #[test]
    fn results_come_back_in_job_order() {
        let jobs: Vec<u64> = (0..200).collect();
        let results = run_parallel(jobs, 4, |_, job| {
            // Uneven durations so workers finish out of order.
            std::thread::sleep(Duration::from_micros((job * 37) % 500));
            Ok(job * 2)
        })
        .unwrap();
        assert_eq!(results, (0..200).map(|j| j * 2).collect::<Vec<_>>());
    }

    #[test]
    fn jobs_start_in_the_order_given() {
        let started = Mutex::new(Vec::new());
        run_parallel((0..50).collect(), 1, |_, job: i32| {
            started.lock().unwrap().push(job);
            Ok(())
        })
        .unwrap();
        assert_eq!(started.into_inner().unwrap(), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_stops_the_queue() {
        let ran = AtomicUsize::new(0);
        let err = run_parallel((0..1000).collect(), 3, |_, job: usize| {
            ran.fetch_add(1, Ordering::SeqCst);
            match job {
                5 => Err(Error::new(ErrorKind::FileRead, "unable to read 'five'")),
                // A later failure, while job 5's error is already recorded.
                6 => {
                    std::thread::sleep(Duration::from_millis(50));
                    Err(Error::new(ErrorKind::FileWrite, "unable to write 'six'"))
                }
                _ => {
                    std::thread::sleep(Duration::from_millis(1));
                    Ok(job)
                }
            }
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileRead);
        assert_eq!(err.message(), "unable to read 'five'");
        let ran = ran.load(Ordering::SeqCst);
        // Jobs 0..=5, a few taken by the other workers, at most one queued job per worker.
        assert!(ran < 20, "{ran} jobs ran after the failure");
    }

    #[test]
    fn one_worker_runs_everything() {
        let results = run_parallel(vec!["a", "b", "c"], 1, |worker, job| {
            assert_eq!(worker, 0);
            Ok(job.to_uppercase())
        })
        .unwrap();
        assert_eq!(results, ["A", "B", "C"]);
        let zero_workers = run_parallel(vec![1, 2], 0, |_, job| Ok(job)).unwrap();
        assert_eq!(zero_workers, [1, 2]);
    }

    #[test]
    fn more_workers_than_jobs_is_fine() {
        let workers_seen = Mutex::new(HashSet::new());
        let results = run_parallel(vec![10, 20], 16, |worker, job| {
            assert!(worker < 2, "worker index {worker} beyond the job count");
            workers_seen.lock().unwrap().insert(worker);
            Ok(job + 1)
        })
        .unwrap();
        assert_eq!(results, [11, 21]);
        assert!(
            run_parallel(Vec::<u8>::new(), 4, |_, job| Ok(job))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_panicking_job_becomes_an_execute_error() {
        let err = run_parallel(vec![1, 2, 3], 2, |_, job: i32| {
            if job == 2 {
                panic!("boom");
            }
            Ok(job)
        })
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Execute);
    }
}
