import Foundation

/// What a config is applied to: the running agent. `switchTo` changes the live settings;
/// `healthCheck` proves the agent still works with them (a changed model loads and answers a test
/// prompt within a deadline). Both throw `FleetConfigError` to refuse.
public protocol ConfigTarget: Sendable {
    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError)
    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError)
}

/// Drives `StateMachine` with real I/O: verifies envelopes, runs the store's durable steps, switches
/// and health-checks the target, and keeps the last status. One apply at a time (an actor).
public actor ConfigApplier {
    public let store: ConfigStore
    public let verifier: ConfigVerifier
    private let target: any ConfigTarget
    private var machine: StateMachine
    public private(set) var lastStatus: ConfigStatus?

    /// Recovers the store (a pending record rolls back) but does not touch the target; call
    /// `start(now:)` to apply the committed config to it.
    public init(store: ConfigStore, verifier: ConfigVerifier, target: any ConfigTarget) throws(FleetConfigError) {
        self.store = store
        self.verifier = verifier
        self.target = target
        let (live, rolledBack) = try store.recover()
        machine = StateMachine(live: live)
        if rolledBack {
            lastStatus = ConfigStatus(version: live.versions.fleet, state: .rolledBack,
                                      error: "the agent stopped while applying a config; last-known-good restored",
                                      at: Int64(Date().timeIntervalSince1970))
        }
    }

    /// The live record (between applies).
    public var live: ConfigRecord { machine.live ?? .empty }

    /// The version `/health` reports: the fleet config's.
    public var configVersion: UInt64 { live.versions.fleet }

    /// Applies the committed config to the target at start-up. A committed config that no longer
    /// works (its model gone) falls back to last-known-good.
    public func start(now: Int64) async -> ConfigStatus? {
        let live = self.live
        guard live != .empty else { return lastStatus }
        do throws(FleetConfigError) {
            try await target.switchTo(live.effective)
            try await target.healthCheck(live.effective)
            return lastStatus
        } catch {
            let lkg: ConfigRecord
            do throws(FleetConfigError) {
                lkg = try store.lastKnownGood()
                try store.run(store.plan(restore: lkg))
                try? await target.switchTo(lkg.effective)
            } catch let storeError {
                let status = ConfigStatus(version: live.versions.fleet, state: .rolledBack,
                                          error: "\(error.message); restoring last-known-good failed: \(storeError.message)", at: now)
                lastStatus = status
                return status
            }
            machine = StateMachine(live: lkg)
            let status = ConfigStatus(version: live.versions.fleet, state: .rolledBack, error: error.message, at: now)
            lastStatus = status
            return status
        }
    }

    /// Verifies and applies one envelope; returns (and keeps) its status.
    @discardableResult
    public func apply(_ data: Data, now: Int64) async -> ConfigStatus {
        let applied: AppliedVersions
        let config: VerifiedConfig
        do throws(FleetConfigError) {
            applied = try store.appliedVersions()
            config = try verifier.verify(data, applied: applied, now: now)
        } catch {
            let version = (try? ConfigEnvelope.parse(data))?.version ?? 0
            return finish(machine.rejected(version: version, error: error, now: now))
        }
        var action = machine.start(config)
        while true {
            switch action {
            case .persist(let candidate, let lkg):
                action = machine.persisted(error: attempt { () throws(FleetConfigError) in
                    try store.run(store.plan(persist: candidate, lastKnownGood: lkg))
                }, now: now)
            case .switchTo(let settings):
                do throws(FleetConfigError) { try await target.switchTo(settings); action = machine.switched(error: nil) } catch {
                    action = machine.switched(error: error)
                }
            case .healthCheck(let settings):
                do throws(FleetConfigError) { try await target.healthCheck(settings); action = machine.checked(error: nil) } catch {
                    action = machine.checked(error: error)
                }
            case .commit(let record):
                action = machine.committed(error: attempt { () throws(FleetConfigError) in
                    try store.run(store.plan(commit: record))
                }, now: now)
            case .restore(let lkg):
                var failure = attempt { () throws(FleetConfigError) in try store.run(store.plan(restore: lkg)) }
                do throws(FleetConfigError) { try await target.switchTo(lkg.effective) } catch { failure = failure ?? error }
                action = machine.restored(error: failure, now: now)
            case .report(let status):
                return finish(.report(status))
            }
        }
    }

    private func attempt(_ body: () throws(FleetConfigError) -> Void) -> FleetConfigError? {
        do { try body(); return nil } catch { return error }
    }

    private func finish(_ action: StateMachine.Action) -> ConfigStatus {
        guard case .report(let status) = action else { preconditionFailure("ConfigApplier finished on \(action)") }
        lastStatus = status
        return status
    }
}
