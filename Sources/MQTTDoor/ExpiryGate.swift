import Synchronization

/// Whether an answer may still be published: open until the request expires (then nothing more
/// goes out) or its final reply or error is about to go out (then expiry comes too late to matter).
final class ExpiryGate: Sendable {
    private enum State { case open, expired, closed }
    private let state = Mutex(State.open)

    var isOpen: Bool { state.withLock { $0 == .open } }
    var isExpired: Bool { state.withLock { $0 == .expired } }

    /// The deadline passed: true if nothing final had gone out.
    func expire() -> Bool {
        state.withLock { s in
            guard s == .open else { return false }
            s = .expired
            return true
        }
    }

    /// The final reply is about to go out: false if the request expired first.
    func close() -> Bool {
        state.withLock { s in
            guard s == .open else { return false }
            s = .closed
            return true
        }
    }
}
