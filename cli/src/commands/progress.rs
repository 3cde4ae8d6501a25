//! The progress bar of long commands, moved by a watcher thread.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A bar of `length` events, or a hidden one.
pub fn bar(length: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) = ProgressStyle::with_template(
        "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} events ({per_sec}, eta {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// Moves a bar to a counter's value until dropped.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts moving `bar` to `count()` ten times a second.
pub fn watch(bar: ProgressBar, count: impl Fn() -> u64 + Send + 'static) -> Watcher {
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let thread = std::thread::spawn(move || {
        while !stopped.load(Ordering::Relaxed) {
            bar.set_position(count());
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    Watcher {
        stop,
        thread: Some(thread),
    }
}

/// Watches a shared counter.
pub fn watch_counter(bar: ProgressBar, counter: Arc<AtomicU64>) -> Watcher {
    watch(bar, move || counter.load(Ordering::Relaxed))
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A bar of `length` steps with a message naming the current one, or a hidden one.
pub fn steps(length: u64, hidden: bool) -> ProgressBar {
    if hidden {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(length);
    if let Ok(style) =
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} runs: {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.enable_steady_tick(Duration::from_secs(1));
    bar
}
