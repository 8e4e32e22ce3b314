import Foundation
import OutpostCore
import Testing
@testable import FleetConfig

@Suite struct ConfigApplierStateMachineTests {
    typealias Machine = ConfigApplier.StateMachine

    func verified(_ payload: String, version: UInt64, target: String = "fleet") throws -> VerifiedConfig {
        try Fleet.verifier().verify(Fleet.signed(payload, version: version, target: target), applied: .init(), now: Fleet.now)
    }

    var old: ConfigRecord {
        get throws {
            ConfigRecord(versions: .init(fleet: 1), fleet: try FleetSettings(payload: Array(#"{"model":{"path":"/old"}}"#.utf8)))
        }
    }

    @Test func happyPathGoesPersistSwitchCheckCommit() throws {
        let old = try old
        var m = Machine(live: old)
        let config = try verified(#"{"model":{"path":"/new"}}"#, version: 2)

        guard case .persist(let candidate, let lkg) = m.start(config) else { Issue.record("expected persist"); return }
        #expect(lkg == old)
        #expect(candidate.state == .pending)
        #expect(candidate.versions.fleet == 2)
        #expect(m.live == nil)  // busy

        #expect(m.persisted(error: nil, now: Fleet.now) == .switchTo(candidate.effective))
        #expect(candidate.effective.modelPath == "/new")
        #expect(m.switched(error: nil) == .healthCheck(candidate.effective))
        guard case .commit(let committed) = m.checked(error: nil) else { Issue.record("expected commit"); return }
        #expect(committed.state == .committed)
        #expect(committed.versions == candidate.versions)
        #expect(m.committed(error: nil, now: Fleet.now) == .report(ConfigStatus(version: 2, state: .applied, source: .fleet, at: Fleet.now)))
        #expect(m.live == committed)
    }

    @Test func failedPersistChangesNothing() throws {
        let old = try old
        var m = Machine(live: old)
        _ = m.start(try verified(#"{"model":{"path":"/new"}}"#, version: 2))
        let action = m.persisted(error: .storage("/x", "disk full"), now: Fleet.now)
        guard case .report(let status) = action else { Issue.record("expected report"); return }
        #expect(status.state == .rejected)
        #expect(status.error?.contains("disk full") == true)
        #expect(m.live == old)
    }

    @Test(arguments: ["switch", "check", "commit"])
    func failureAfterPersistRestoresLastKnownGood(step: String) throws {
        let old = try old
        var m = Machine(live: old)
        _ = m.start(try verified(#"{"model":{"path":"/broken"}}"#, version: 2))
        _ = m.persisted(error: nil, now: Fleet.now)
        let failure = FleetConfigError.healthCheck("the model did not load")
        var action = m.switched(error: step == "switch" ? failure : nil)
        if step != "switch" { action = m.checked(error: step == "check" ? failure : nil) }
        if step == "commit" { action = m.committed(error: failure, now: Fleet.now) }
        #expect(action == .restore(old))
        #expect(m.live == nil)
        guard case .report(let status) = m.restored(error: nil, now: Fleet.now) else { Issue.record("expected report"); return }
        #expect(status.state == .rolledBack)
        #expect(status.version == 2)
        #expect(status.error?.contains("did not load") == true)
        #expect(status.reason == "health_check")
        #expect(status.source == .fleet)
        #expect(m.live == old)
    }

    @Test func gatewayOverrideKeepsTheFleetPartAndMergesFieldByField() throws {
        var m = Machine(live: .empty)
        let fleet = try verified(#"{"generation":{"temperature":0.7,"top_k":40},"cache":{"ttl_s":600}}"#, version: 4)
        guard case .persist(let afterFleet, _) = m.start(fleet) else { Issue.record("expected persist"); return }
        _ = m.persisted(error: nil, now: Fleet.now); _ = m.switched(error: nil); _ = m.checked(error: nil)
        _ = m.committed(error: nil, now: Fleet.now)
        #expect(afterFleet.versions == AppliedVersions(fleet: 4, gateway: 0))

        let gw = try verified(#"{"generation":{"temperature":0},"model":{"path":"/gw.gguf"}}"#, version: 1, target: "gw-1")
        guard case .persist(let both, _) = m.start(gw) else { Issue.record("expected persist"); return }
        #expect(both.versions == AppliedVersions(fleet: 4, gateway: 1))
        let effective = both.effective
        #expect(effective["generation", "temperature"] == .number(0))   // gateway wins
        #expect(effective["generation", "top_k"] == .number(40))        // fleet kept
        #expect(effective["cache", "ttl_s"] == .number(600))
        #expect(effective.modelPath == "/gw.gguf")
    }

    @Test func rejectionReportsWithoutStateChange() throws {
        let old = try old
        let m = Machine(live: old)
        let action = m.rejected(version: 9, error: .replay(version: 9), now: Fleet.now)
        guard case .report(let status) = action else { Issue.record("expected report"); return }
        #expect(status == ConfigStatus(version: 9, state: .rejected, error: FleetConfigError.replay(version: 9).message,
                                       reason: "replay", at: Fleet.now))
        #expect(m.live == old)
    }
}
