extension MQTTConnection {
    /// When to connect, how long to back off, and whether a session was lost: a plain value driven
    /// by the network thread and tested step by step without I/O.
    ///
    /// The first connect is retried like every other one (libmosquitto does not retry a first
    /// connect that fails). Delays grow exponentially from `initialDelay` to `maximumDelay`, with
    /// "equal jitter" (half the delay fixed, half random) so a fleet does not reconnect in step
    /// after a broker restart. A successful CONNACK resets the backoff.
    public struct StateMachine: Sendable, Equatable {
        public enum State: Sendable, Equatable {
            case idle
            /// A connect attempt is in progress (TCP/TLS handshake, CONNECT sent, awaiting CONNACK).
            case connecting(attempt: Int, sinceMillis: UInt64)
            case connected
            /// Waiting until `untilMillis` before the next attempt.
            case backingOff(attempt: Int, untilMillis: UInt64)
            case stopped
        }

        /// What the network thread must do next.
        public enum Action: Sendable, Equatable {
            case connect
            case wait(untilMillis: UInt64)
            /// Run the network loop (reading, writing, keepalive).
            case pump
            case none
        }

        /// The result of a CONNACK.
        public enum ConnAckOutcome: Sendable, Equatable {
            /// Connected; `sessionLost` when a session was held before and the broker has none.
            case connected(sessionLost: Bool)
            /// Refused by the broker (bad credentials, not authorised…): back off and retry.
            case refused(retryAtMillis: UInt64)
            /// A CONNACK outside a connect attempt (ignored).
            case ignored
        }

        public let initialDelayMillis: UInt64
        public let maximumDelayMillis: UInt64
        /// How long a connect attempt may wait for its CONNACK.
        public let connAckTimeoutMillis: UInt64
        public private(set) var state: State = .idle
        /// Whether the gateway has held a session with the broker (persisted across restarts by the caller).
        public private(set) var hadSession: Bool
        /// Consecutive failed attempts.
        public private(set) var failures = 0

        public init(initialDelayMillis: UInt64 = 100, maximumDelayMillis: UInt64 = 30_000,
                    connAckTimeoutMillis: UInt64 = 10_000, hadSession: Bool = false) {
            self.initialDelayMillis = max(1, initialDelayMillis)
            self.maximumDelayMillis = max(self.initialDelayMillis, maximumDelayMillis)
            self.connAckTimeoutMillis = connAckTimeoutMillis
            self.hadSession = hadSession
        }

        /// The delay before attempt `failures + 1`, before jitter: initial × 2^(failures − 1), capped.
        public func baseDelay(failures: Int) -> UInt64 {
            guard failures > 0 else { return 0 }
            let shift = min(failures - 1, 40)
            let (scaled, overflow) = initialDelayMillis.multipliedReportingOverflow(by: 1 << UInt64(shift))
            return overflow ? maximumDelayMillis : min(scaled, maximumDelayMillis)
        }

        /// Equal jitter: half the base delay plus `unit` (in 0..<1) of the other half.
        public func delay(failures: Int, unit: Double) -> UInt64 {
            let base = baseDelay(failures: failures)
            let u = unit.isFinite ? min(max(unit, 0), 1) : 0
            return base / 2 + UInt64(Double(base - base / 2) * u)
        }

        /// Start: connect at once.
        public mutating func start(nowMillis: UInt64) -> Action {
            guard state == .idle else { return .none }
            state = .connecting(attempt: 1, sinceMillis: nowMillis)
            return .connect
        }

        /// The connect call failed before any CONNACK (refused TCP, TLS failure, DNS).
        public mutating func connectFailed(nowMillis: UInt64, unit: Double) -> Action {
            guard case .connecting(let attempt, _) = state else { return next(nowMillis: nowMillis) }
            return backOff(attempt: attempt, nowMillis: nowMillis, unit: unit)
        }

        public mutating func connAck(reasonCode: Int32, sessionPresent: Bool, nowMillis: UInt64, unit: Double) -> ConnAckOutcome {
            guard case .connecting(let attempt, _) = state else { return .ignored }
            guard reasonCode == 0 else {
                guard case .wait(let until) = backOff(attempt: attempt, nowMillis: nowMillis, unit: unit) else { return .ignored }
                return .refused(retryAtMillis: until)
            }
            state = .connected
            failures = 0
            let lost = hadSession && !sessionPresent
            hadSession = true
            return .connected(sessionLost: lost)
        }

        /// The network loop reported the connection gone (or the broker closed it).
        public mutating func connectionLost(nowMillis: UInt64, unit: Double) -> Action {
            switch state {
            case .connected:
                // The first retry after a working connection is quick; repeated failures back off.
                failures = 0
                return backOff(attempt: 1, nowMillis: nowMillis, unit: unit)
            case .connecting(let attempt, _):
                return backOff(attempt: attempt, nowMillis: nowMillis, unit: unit)
            default:
                return next(nowMillis: nowMillis)
            }
        }

        /// What to do now (the network thread calls it on each turn).
        public mutating func next(nowMillis: UInt64) -> Action {
            switch state {
            case .idle, .stopped:
                return .none
            case .connected:
                return .pump
            case .connecting:
                return .pump
            case .backingOff(let attempt, let until):
                if nowMillis >= until {
                    state = .connecting(attempt: attempt, sinceMillis: nowMillis)
                    return .connect
                }
                return .wait(untilMillis: until)
            }
        }

        /// Whether a connect attempt has waited too long for its CONNACK.
        public func connAckOverdue(nowMillis: UInt64) -> Bool {
            if case .connecting(_, let since) = state { return nowMillis >= since &+ connAckTimeoutMillis }
            return false
        }

        public mutating func stop() {
            state = .stopped
        }

        public var isConnected: Bool { state == .connected }

        private mutating func backOff(attempt: Int, nowMillis: UInt64, unit: Double) -> Action {
            failures += 1
            let until = nowMillis &+ delay(failures: failures, unit: unit)
            state = .backingOff(attempt: attempt + 1, untilMillis: until)
            return .wait(untilMillis: until)
        }
    }
}
