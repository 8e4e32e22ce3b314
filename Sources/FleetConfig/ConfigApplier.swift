import FoundationEssentials
import OutpostCore

/// What a config is applied to: the running agent. `switchTo` changes the live settings;
/// `healthCheck` proves the agent still works with them (a changed model loads and answers a test
/// prompt within a deadline). Both throw `FleetConfigError` to refuse.
public protocol ConfigTarget: Sendable {
    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError)
    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError)
}

/// Drives `StateMachine` with real I/O: verifies envelopes, runs the store's durable steps, switches
/// and health-checks the target, and keeps the last status. One apply at a time: the actor is
/// reentrant at each `await` on the target, so applies queue behind `busy` (in arrival order).
public actor ConfigApplier {
    public nonisolated let store: ConfigStore
    public nonisolated let verifier: ConfigVerifier
    private let target: any ConfigTarget
    private var machine: StateMachine
    /// The live record as of the last idle moment (what `/health` reports while an apply runs).
    private var lastLive: ConfigRecord
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []
    public private(set) var lastStatus: ConfigStatus?

    /// Recovers the store (a pending record rolls back) but does not touch the target; call
    /// `start(now:)` to apply the committed config to it.
    public init(store: ConfigStore, verifier: ConfigVerifier, target: any ConfigTarget) throws(FleetConfigError) {
        self.store = store
        self.verifier = verifier
        self.target = target
        let (live, rolledBack) = try store.recover()
        machine = StateMachine(live: live)
        lastLive = live
        if rolledBack {
            lastStatus = ConfigStatus(version: live.versions.fleet, state: .rolledBack,
                                      error: "the agent stopped while applying a config; last-known-good restored",
                                      reason: "interrupted", at: Int64(Date().timeIntervalSince1970))
        }
    }

    /// The live record (during an apply, the one live before it).
    public var live: ConfigRecord { machine.live ?? lastLive }

    /// Whether `data` is an envelope whose version is the one already applied from its source:
    /// a retained config delivered again (on every MQTT (re)subscription). Nothing is verified: the
    /// caller does nothing with it.
    public func isApplied(_ data: Data) -> Bool {
        guard data.count <= verifier.maxEnvelopeBytes, let envelope = try? ConfigEnvelope.parse(data),
              let source = verifier.source(of: envelope), let applied = try? store.appliedVersions()
        else { return false }
        return applied[source] == envelope.version
    }

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
                                          error: "\(error.message); restoring last-known-good failed: \(storeError.message)",
                                          reason: error.reason, at: now)
                lastStatus = status
                return status
            }
            machine = StateMachine(live: lkg)
            lastLive = lkg
            let status = ConfigStatus(version: live.versions.fleet, state: .rolledBack, failure: error, at: now)
            lastStatus = status
            return status
        }
    }

    /// Verifies and applies one envelope; returns (and keeps) its status. `source`, when given, is
    /// where the envelope came from (its MQTT topic): its signed target must name the same source.
    /// `progress`, when given, hears each step as it begins or completes (`validating`, then for a
    /// verified config `persisted`, `switching`, `health_check`), before the final status is returned.
    /// `target`, when given, is switched and checked instead of the one given at `init` (the
    /// running agent's, once it exists; the one at `init` serves the start).
    @discardableResult
    public func apply(_ data: Data, from source: ConfigSource? = nil, now: Int64, to target: (any ConfigTarget)? = nil,
                      progress: (@Sendable (ConfigStatus) async -> Void)? = nil) async -> ConfigStatus {
        let target = target ?? self.target
        while busy { await withCheckedContinuation { waiters.append($0) } }
        busy = true
        defer {
            busy = false
            if !waiters.isEmpty { waiters.removeFirst().resume() }
        }
        let envelope = data.count <= verifier.maxEnvelopeBytes ? try? ConfigEnvelope.parse(data) : nil
        await progress?(ConfigStatus(version: envelope?.version ?? 0, state: .validating,
                                     source: envelope.flatMap(verifier.source(of:)) ?? source, at: now))
        let applied: AppliedVersions
        let config: VerifiedConfig
        do throws(FleetConfigError) {
            applied = try store.appliedVersions()
            config = try verifier.verify(data, applied: applied, now: now, expecting: source)
        } catch {
            var status = finish(machine.rejected(version: envelope?.version ?? 0, error: error, now: now))
            status.source = envelope.flatMap(verifier.source(of:)) ?? source
            lastStatus = status
            return status
        }
        func step(_ state: ConfigStatus.State) async {
            await progress?(ConfigStatus(version: config.version, state: state, source: config.source, at: now))
        }
        var action = machine.start(config)
        while true {
            switch action {
            case .persist(let candidate, let lkg):
                action = machine.persisted(error: attempt { () throws(FleetConfigError) in
                    try store.run(store.plan(persist: candidate, lastKnownGood: lkg))
                }, now: now)
                if case .switchTo = action { await step(.persisted) }
            case .switchTo(let settings):
                await step(.switching)
                do throws(FleetConfigError) { try await target.switchTo(settings); action = machine.switched(error: nil) } catch {
                    action = machine.switched(error: error)
                }
            case .healthCheck(let settings):
                await step(.healthCheck)
                do throws(FleetConfigError) { try await target.healthCheck(settings); action = machine.checked(error: nil) } catch {
                    action = machine.checked(error: error)
                }
            case .commit(let record):
                action = machine.committed(error: attempt { () throws(FleetConfigError) in
                    try store.run(store.plan(commit: record))
                }, now: now)
            case .restore(let lkg):
                var failure = attempt { () throws(FleetConfigError) in try store.run(store.plan(restore: lkg)) }
                // Switched and checked: a target that switches its model at the health check
                // switches it back here.
                do throws(FleetConfigError) {
                    try await target.switchTo(lkg.effective)
                    try await target.healthCheck(lkg.effective)
                } catch { failure = failure ?? error }
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
        if let live = machine.live { lastLive = live }
        return status
    }
}
