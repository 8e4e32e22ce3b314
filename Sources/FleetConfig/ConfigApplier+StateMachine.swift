extension ConfigApplier {
    /// The apply sequence as a plain value: validate → persist new + last-known-good → switch →
    /// health check → commit, or restore last-known-good. Each call takes the outcome of the
    /// previous action and returns the next one; the driver (`ConfigApplier`) does the I/O.
    public struct StateMachine: Sendable, Equatable {
        public enum State: Sendable, Equatable {
            case idle(live: ConfigRecord)
            case persisting(candidate: ConfigRecord, lastKnownGood: ConfigRecord, version: UInt64)
            case switching(candidate: ConfigRecord, lastKnownGood: ConfigRecord, version: UInt64)
            case checking(candidate: ConfigRecord, lastKnownGood: ConfigRecord, version: UInt64)
            case committing(candidate: ConfigRecord, lastKnownGood: ConfigRecord, version: UInt64)
            case restoring(lastKnownGood: ConfigRecord, version: UInt64, error: FleetConfigError)
        }

        public enum Action: Sendable, Equatable {
            /// Write `lastKnownGood`, the new applied versions and `candidate` (pending) durably.
            case persist(candidate: ConfigRecord, lastKnownGood: ConfigRecord)
            /// Switch the live settings to these.
            case switchTo(FleetSettings)
            /// Check that the agent works with these settings (model loads, answers a test prompt).
            case healthCheck(FleetSettings)
            /// Mark `candidate` committed in the store.
            case commit(ConfigRecord)
            /// Switch back to and store `lastKnownGood` as the live config.
            case restore(ConfigRecord)
            /// The sequence is over; report this status.
            case report(ConfigStatus)
        }

        public private(set) var state: State
        /// The source of the config being applied (for the statuses it reports).
        private var source: ConfigSource?

        public init(live: ConfigRecord) { state = .idle(live: live) }

        /// The live record when idle.
        public var live: ConfigRecord? {
            if case .idle(let live) = state { live } else { nil }
        }

        /// A config failed verification: nothing changes.
        public func rejected(version: UInt64, error: FleetConfigError, now: Int64) -> Action {
            .report(ConfigStatus(version: version, state: .rejected, failure: error, at: now))
        }

        /// A verified config arrived: persist it (and what it replaces) before touching anything live.
        public mutating func start(_ config: VerifiedConfig) -> Action {
            guard case .idle(let live) = state else {
                preconditionFailure("ConfigApplier.StateMachine.start while an apply is in progress: \(state)")
            }
            let candidate = live.replacing(with: config)
            source = config.source
            state = .persisting(candidate: candidate, lastKnownGood: live, version: config.version)
            return .persist(candidate: candidate, lastKnownGood: live)
        }

        /// The outcome of `.persist`. A failed write leaves the old config live (writes are atomic).
        public mutating func persisted(error: FleetConfigError?, now: Int64) -> Action {
            guard case .persisting(let candidate, let lkg, let version) = state else { return unexpected("persisted") }
            if let error {
                state = .idle(live: lkg)
                return .report(ConfigStatus(version: version, state: .rejected, failure: error, source: source, at: now))
            }
            state = .switching(candidate: candidate, lastKnownGood: lkg, version: version)
            return .switchTo(candidate.effective)
        }

        /// The outcome of `.switchTo`.
        public mutating func switched(error: FleetConfigError?) -> Action {
            guard case .switching(let candidate, let lkg, let version) = state else { return unexpected("switched") }
            if let error {
                state = .restoring(lastKnownGood: lkg, version: version, error: error)
                return .restore(lkg)
            }
            state = .checking(candidate: candidate, lastKnownGood: lkg, version: version)
            return .healthCheck(candidate.effective)
        }

        /// The outcome of `.healthCheck`.
        public mutating func checked(error: FleetConfigError?) -> Action {
            guard case .checking(let candidate, let lkg, let version) = state else { return unexpected("checked") }
            if let error {
                state = .restoring(lastKnownGood: lkg, version: version, error: error)
                return .restore(lkg)
            }
            var committed = candidate
            committed.state = .committed
            state = .committing(candidate: committed, lastKnownGood: lkg, version: version)
            return .commit(committed)
        }

        /// The outcome of `.commit`. If the commit cannot be written, the store still says pending
        /// and the next start rolls back, so roll back now too.
        public mutating func committed(error: FleetConfigError?, now: Int64) -> Action {
            guard case .committing(let candidate, let lkg, let version) = state else { return unexpected("committed") }
            if let error {
                state = .restoring(lastKnownGood: lkg, version: version, error: error)
                return .restore(lkg)
            }
            state = .idle(live: candidate)
            return .report(ConfigStatus(version: version, state: .applied, source: source, at: now))
        }

        /// The outcome of `.restore`.
        public mutating func restored(error: FleetConfigError?, now: Int64) -> Action {
            guard case .restoring(let lkg, let version, let reason) = state else { return unexpected("restored") }
            state = .idle(live: lkg)
            let message = error.map { "\(reason.message); restoring last-known-good also failed: \($0.message)" } ?? reason.message
            return .report(ConfigStatus(version: version, state: .rolledBack, error: message, reason: reason.reason,
                                        source: source, at: now))
        }

        private func unexpected(_ event: String) -> Action {
            preconditionFailure("ConfigApplier.StateMachine.\(event) in state \(state)")
        }
    }
}
