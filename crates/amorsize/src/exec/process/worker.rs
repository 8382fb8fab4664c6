//! Worker mode: this executable, started again by the pool, serving chunks until its parent
//! closes the pipe.

use super::registry;
use super::sys;
use super::wire::{self, Hello, Request, Response};
use std::cell::Cell;
use std::io::{self, BufWriter};
use std::time::Instant;

/// Set in a worker's environment by the pool; its presence is what makes
/// [`init`](super::init) serve instead of returning.
pub(super) const WORKER_ENV: &str = "AMORSIZE_WORKER";

thread_local! {
    /// Whether the user's function is running, so that the panic hook stays quiet for panics
    /// that are caught and sent back to the parent (and speaks for any other).
    static IN_FUNCTION: Cell<bool> = const { Cell::new(false) };
}

/// Whether this process was started as a worker.
pub(super) fn is_worker() -> bool {
    std::env::var_os(WORKER_ENV).is_some()
}

/// Serves requests on standard input until end of file; returns the exit code.
pub(super) fn serve() -> i32 {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !IN_FUNCTION.with(Cell::get) {
            previous(info);
        }
    }));
    match serve_pipes() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("amorsize worker {}: {e}", std::process::id());
            2
        }
    }
}

fn serve_pipes() -> io::Result<()> {
    let mut output = BufWriter::new(sys::take_stdout()?);
    let mut input = io::stdin().lock();
    let hello = postcard::to_stdvec(&Hello {
        magic: wire::MAGIC,
        version: wire::VERSION,
        pid: std::process::id(),
    })
    .map_err(io::Error::other)?;
    wire::write_frame(&mut output, &[&hello])?;
    let mut frame = Vec::new();
    let mut header = Vec::new();
    let mut body = Vec::new();
    loop {
        match wire::read_frame(&mut input, &mut frame) {
            Ok(()) => {}
            // The parent closed the pipe: a clean shutdown.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        body.clear();
        let response = answer(&frame, &mut body);
        header.clear();
        wire::encode_into(&response, &mut header).map_err(io::Error::other)?;
        wire::write_frame(&mut output, &[&header, &body])?;
    }
}

/// Runs one request, appending the slots to `body`.
fn answer(frame: &[u8], body: &mut Vec<u8>) -> Response {
    let (request, mut items) = match postcard::take_from_bytes::<Request<'_>>(frame) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Response::Malformed {
                message: format!("the request could not be decoded: {e}"),
            }
        }
    };
    let Request::Chunk {
        function,
        first,
        count,
    } = request;
    let Some(call) = registry::lookup(function) else {
        return Response::Unknown {
            function: function.to_owned(),
        };
    };
    let start = Instant::now();
    let mut done = 0;
    let mut stopped = None;
    IN_FUNCTION.with(|f| f.set(true));
    while done < count {
        if let Err(message) = call(first as usize + done as usize, &mut items, body) {
            stopped = Some(message);
            break;
        }
        done += 1;
    }
    IN_FUNCTION.with(|f| f.set(false));
    Response::Chunk {
        count: done,
        busy_nanos: start.elapsed().as_nanos().min(u64::MAX as u128) as u64,
        stopped,
        peak_rss: sys::peak_rss().unwrap_or(0),
    }
}
