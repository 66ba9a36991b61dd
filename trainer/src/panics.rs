//! Panics as errors: their text, and a process that stops on the first one, on any thread.

/// The text of a panic's payload.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown error".into())
}

/// Makes a panic on any thread end the process with exit status 1 and one `error:` line. GPU
/// runtimes execute on threads of their own: a failure there (a buffer the device cannot
/// allocate, a kernel that does not compile) would otherwise leave the command running on with
/// empty tensors and printing results computed without its weights.
pub fn exit_on_any_panic() {
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!(
            "error: {} (on thread `{name}`{place}; stopped: nothing computed after it is trusted)",
            panic_message(info.payload()).trim()
        );
        std::process::exit(1);
    }));
}
