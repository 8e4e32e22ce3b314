import Dispatch
import FoundationEssentials
#if canImport(Glibc)
import Glibc
#endif
import OutpostCore

/// Runs generations one at a time on a dedicated thread (they use every compute thread, so
/// running two at once would only slow both), with a bounded number waiting. A request beyond
/// the bound is refused at once with `ServiceError.busy`; a cancelled request stops at the next
/// token.
final class GenerationScheduler: @unchecked Sendable {
    // @unchecked: `waiting`, `closed` and `current` are guarded by `lock`.
    private let queue = DispatchQueue(label: "outpost.generation", qos: .userInitiated)
    private let lock = Lock()
    private var waiting = 0
    private var closed = false
    private var inFlight: [ObjectIdentifier: CancelFlag] = [:]
    let maxQueued: Int

    /// A flag the generation polls between tokens. Setting it also runs the handler the
    /// scheduler registers (`onSet`), which takes a job still waiting out of the queue at once.
    final class CancelFlag: @unchecked Sendable {
        // @unchecked: `value` and `handler` are guarded by `lock`.
        private let lock = Lock()
        private var value = false
        private var handler: (@Sendable () -> Void)?

        func set() {
            let h = lock.withLock { () -> (@Sendable () -> Void)? in
                defer { handler = nil }
                value = true
                return handler
            }
            h?()
        }

        var isSet: Bool { lock.withLock { value } }

        /// Runs `h` once when the flag is set (at once if it already is); replaces an earlier one.
        func onSet(_ h: @escaping @Sendable () -> Void) {
            let now = lock.withLock { () -> Bool in
                if value { return true }
                handler = h
                return false
            }
            if now { h() }
        }

        func clearHandler() { lock.withLock { handler = nil } }
    }

    /// Where one job stands; whoever moves it out of `queued` resumes its caller.
    private final class Job<T: Sendable>: @unchecked Sendable {
        // @unchecked: guarded by `lock`.
        enum State { case created, queued, running, finished }
        let lock = Lock()
        var state = State.created
        var cancelled = false
        var continuation: CheckedContinuation<T, Error>?
    }

    init(maxQueued: Int) {
        self.maxQueued = maxQueued
    }

    /// Requests queued or running.
    var depth: Int { lock.withLock { waiting } }

    /// Runs `work` when the model is free. Throws `busy` when too many are waiting, and
    /// `shuttingDown` once `close()` was called. The work stops when the calling task is
    /// cancelled or `flag` is set by someone else: a queued job then leaves the queue at once
    /// (its caller gets `CancellationError` and its place is freed), and a running one stops at
    /// its next token (it polls `flag`).
    func run<T: Sendable>(cancelledBy flag: CancelFlag = CancelFlag(),
                          _ work: @escaping @Sendable (CancelFlag) throws -> T) async throws -> T {
        try lock.withLock {
            if closed { throw ServiceError.shuttingDown() }
            // One running plus `maxQueued` waiting.
            guard waiting <= maxQueued else {
                throw ServiceError.busy("\(waiting) requests are already waiting for the model", retryAfter: 2)
            }
            waiting += 1
            inFlight[ObjectIdentifier(flag)] = flag
        }
        let job = Job<T>()
        let release: @Sendable () -> Void = { [self] in
            lock.withLock {
                waiting -= 1
                inFlight[ObjectIdentifier(flag)] = nil
            }
        }
        // Set by the caller's cancellation, by whoever owns the flag, or by `close`.
        flag.onSet {
            let c = job.lock.withLock { () -> CheckedContinuation<T, Error>? in
                job.cancelled = true
                guard job.state == .queued else { return nil }
                job.state = .finished
                return job.continuation
            }
            if let c {
                release()
                c.resume(throwing: CancellationError())
            }
        }
        defer { flag.clearHandler() }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                let early = job.lock.withLock { () -> Bool in
                    if job.cancelled {
                        job.state = .finished
                        return true
                    }
                    job.continuation = continuation
                    job.state = .queued
                    return false
                }
                if early {
                    release()
                    continuation.resume(throwing: CancellationError())
                    return
                }
                queue.async {
                    let go = job.lock.withLock { () -> Bool in
                        guard job.state == .queued else { return false }  // left the queue when cancelled
                        job.state = .running
                        return true
                    }
                    guard go else { return }
                    let result: Result<T, Error> = flag.isSet ? .failure(CancellationError()) : Result { try work(flag) }
                    job.lock.withLock { job.state = .finished }
                    release()
                    continuation.resume(with: result)
                }
            }
        } onCancel: {
            flag.set()
        }
    }

    /// Refuses new work; with `cancelRunning`, also asks running and queued work to stop.
    func close(cancelRunning: Bool) {
        let flags = lock.withLock { () -> [CancelFlag] in
            closed = true
            return Array(inFlight.values)
        }
        if cancelRunning { flags.forEach { $0.set() } }
    }
}
