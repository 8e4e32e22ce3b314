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

    /// A flag the generation polls between tokens.
    final class CancelFlag: @unchecked Sendable {
        // @unchecked: `value` is guarded by `lock`.
        private let lock = Lock()
        private var value = false
        func set() { lock.withLock { value = true } }
        var isSet: Bool { lock.withLock { value } }
    }

    init(maxQueued: Int) {
        self.maxQueued = maxQueued
    }

    /// Requests queued or running.
    var depth: Int { lock.withLock { waiting } }

    /// Runs `work` when the model is free. Throws `busy` when too many are waiting, and
    /// `shuttingDown` once `close()` was called. The work stops when the calling task is
    /// cancelled or `flag` is set by someone else: a queued job is then dropped when its turn
    /// comes, and a running one stops at its next token (it polls `flag`).
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
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, Error>) in
                queue.async {
                    defer {
                        self.lock.withLock {
                            self.waiting -= 1
                            self.inFlight[ObjectIdentifier(flag)] = nil
                        }
                    }
                    if flag.isSet {
                        continuation.resume(throwing: CancellationError())
                        return
                    }
                    continuation.resume(with: Result { try work(flag) })
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
