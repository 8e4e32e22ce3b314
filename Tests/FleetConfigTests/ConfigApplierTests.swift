import Foundation
import OutpostCore
import OutpostTesting
import Synchronization
import Testing
@testable import FleetConfig

/// A target that records what it was switched to and fails health checks for chosen model paths.
final class RecordingTarget: ConfigTarget, @unchecked Sendable {
    private let lock = NSLock()
    private var _switches: [String?] = []
    let brokenModels: Set<String>

    init(brokenModels: Set<String> = []) { self.brokenModels = brokenModels }

    var switches: [String?] { lock.withLock { _switches } }

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        lock.withLock { _switches.append(settings.modelPath) }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {
        if let path = settings.modelPath, brokenModels.contains(path) {
            throw .healthCheck("model \(path) did not load")
        }
    }
}

@Suite struct ConfigApplierTests {
    func applier(_ dir: TemporaryDirectory, _ target: RecordingTarget) throws -> ConfigApplier {
        try ConfigApplier(store: ConfigStore(stateDirectory: dir.path), verifier: Fleet.verifier(), target: target)
    }

    @Test func goodConfigIsAppliedAndKeptAcrossRestart() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let target = RecordingTarget()
        let a = try applier(dir, target)
        let status = await a.apply(try Fleet.signed(#"{"model":{"path":"/m1"}}"#, version: 3), now: Fleet.now)
        #expect(status == ConfigStatus(version: 3, state: .applied, source: .fleet, at: Fleet.now))
        #expect(await a.configVersion == 3)
        #expect(target.switches == ["/m1"])

        let restartedTarget = RecordingTarget()
        let b = try applier(dir, restartedTarget)
        #expect(await b.configVersion == 3)
        #expect(await b.start(now: Fleet.now) == nil)
        #expect(restartedTarget.switches == ["/m1"])  // the committed config is applied again at start
        let replay = await b.apply(try Fleet.signed(#"{"model":{"path":"/m1"}}"#, version: 3), now: Fleet.now)
        #expect(replay.state == .rejected)
        #expect(replay.error?.contains("already applied") == true)
    }

    @Test func brokenModelIsRolledBackAndTheOldConfigStaysLive() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let target = RecordingTarget(brokenModels: ["/broken"])
        let a = try applier(dir, target)
        _ = await a.apply(try Fleet.signed(#"{"model":{"path":"/good"}}"#, version: 1), now: Fleet.now)
        let status = await a.apply(try Fleet.signed(#"{"model":{"path":"/broken"}}"#, version: 2), now: Fleet.now)
        #expect(status.state == .rolledBack)
        #expect(status.version == 2)
        #expect(status.error?.contains("/broken did not load") == true)
        #expect(target.switches == ["/good", "/broken", "/good"])
        #expect(await a.live.effective.modelPath == "/good")
        #expect(await a.configVersion == 1)
        // After a restart the good one is still live, and the broken version is not retried.
        let b = try applier(dir, RecordingTarget(brokenModels: ["/broken"]))
        #expect(await b.live.effective.modelPath == "/good")
        #expect(await b.apply(try Fleet.signed(#"{"model":{"path":"/broken"}}"#, version: 2), now: Fleet.now).state == .rejected)
    }

    @Test func rejectedConfigChangesNothingAndSaysWhy() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let target = RecordingTarget()
        let a = try applier(dir, target)
        _ = await a.apply(try Fleet.signed(#"{"cache":{"ttl_s":5}}"#, version: 4), now: Fleet.now)
        let before = try ConfigStore(stateDirectory: dir.path).committed()
        for (data, reason) in [
            (try Fleet.signed(#"{"cache":{"ttl_s":6}}"#, version: 3), "older than"),
            (try Fleet.signed(#"{"cache":{"ttl_s":6}}"#, version: 5, key: Fleet.ops2), "not trusted"),
            (try Fleet.signed(#"{"cache":{"ttl":6}}"#, version: 5), "cache.ttl"),
            (Data("garbage".utf8), "malformed"),
        ] {
            let status = await a.apply(data, now: Fleet.now)
            #expect(status.state == .rejected)
            #expect(status.error?.contains(reason) == true, "\(status.error ?? "")")
        }
        #expect(try ConfigStore(stateDirectory: dir.path).committed() == before)
        #expect(try ConfigStore(stateDirectory: dir.path).appliedVersions() == AppliedVersions(fleet: 4))
        #expect(target.switches.count == 1)
    }

    @Test func committedConfigThatNoLongerWorksAtStartFallsBack() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let a = try applier(dir, RecordingTarget())
        _ = await a.apply(try Fleet.signed(#"{"model":{"path":"/one"}}"#, version: 1), now: Fleet.now)
        _ = await a.apply(try Fleet.signed(#"{"model":{"path":"/two"}}"#, version: 2), now: Fleet.now)
        let target = RecordingTarget(brokenModels: ["/two"])  // e.g. the file was deleted since
        let b = try applier(dir, target)
        let status = await b.start(now: Fleet.now)
        #expect(status?.state == .rolledBack)
        #expect(await b.live.effective.modelPath == "/one")
        #expect(target.switches == ["/two", "/one"])
        #expect(try ConfigStore(stateDirectory: dir.path).committed().effective.modelPath == "/one")
    }

    @Test func everyStepIsReportedAsItHappensWithTheOutcomeLast() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let target = RecordingTarget(brokenModels: ["/broken"])
        let a = try applier(dir, target)
        final class Steps: Sendable {
            let seen = Mutex<[String]>([])
        }
        func run(_ data: Data) async -> [String] {
            let steps = Steps()
            let status = await a.apply(data, now: Fleet.now) { step in
                #expect(!step.state.isFinal)
                steps.seen.withLock { $0.append("\(step.version):\(step.state.rawValue)") }
            }
            return steps.seen.withLock { $0 } + ["\(status.version):\(status.state.rawValue)"]
        }
        #expect(await run(try Fleet.signed(#"{"model":{"path":"/good"}}"#, version: 1))
            == ["1:validating", "1:persisted", "1:switching", "1:health_check", "1:applied"])
        #expect(await run(try Fleet.signed(#"{"model":{"path":"/broken"}}"#, version: 2))
            == ["2:validating", "2:persisted", "2:switching", "2:health_check", "2:rolled_back"])
        #expect(await run(try Fleet.signed(#"{"model":{"path":"/good"}}"#, version: 1)) == ["1:validating", "1:rejected"])
        #expect(await run(Data("garbage".utf8)) == ["0:validating", "0:rejected"])
    }
}

/// A target whose switch takes a while, to overlap applies.
final class SlowTarget: ConfigTarget, @unchecked Sendable {
    private let lock = NSLock()
    private var inside = 0
    private var _maxInside = 0
    var maxInside: Int { lock.withLock { _maxInside } }

    func switchTo(_ settings: FleetSettings) async throws(FleetConfigError) {
        lock.withLock { inside += 1; _maxInside = max(_maxInside, inside) }
        try? await Task.sleep(for: .milliseconds(50))
        lock.withLock { inside -= 1 }
    }

    func healthCheck(_ settings: FleetSettings) async throws(FleetConfigError) {}
}

@Suite struct ConfigApplierConcurrencyTests {
    @Test func overlappingAppliesRunOneAtATimeAndTheLiveVersionStaysReadable() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let target = SlowTarget()
        let a = try ConfigApplier(store: ConfigStore(stateDirectory: dir.path), verifier: Fleet.verifier(), target: target)
        _ = await a.apply(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 1), now: Fleet.now)
        // While an apply is in its (slow) switch, /health still reads the live version, not 0.
        let second = Task { await a.apply(try! Fleet.signed(#"{"cache":{"ttl_s":2}}"#, version: 2), now: Fleet.now) }
        let gateway = Task {
            await a.apply(try! Fleet.signed(#"{"cache":{"ttl_s":3}}"#, version: 1, target: "gw-1"), now: Fleet.now)
        }
        try await Task.sleep(for: .milliseconds(20))
        #expect(await a.configVersion >= 1)
        #expect(await second.value.state == .applied)
        #expect(await gateway.value.state == .applied)
        #expect(target.maxInside == 1)
        #expect(await a.live.versions == AppliedVersions(fleet: 2, gateway: 1))
    }

    @Test func isAppliedRecognisesTheAppliedVersionOfEachSourceOnly() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let a = try ConfigApplier(store: ConfigStore(stateDirectory: dir.path), verifier: Fleet.verifier(), target: RecordingTarget())
        let fleet3 = try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 3)
        #expect(await a.isApplied(fleet3) == false)
        _ = await a.apply(fleet3, now: Fleet.now)
        #expect(await a.isApplied(fleet3))
        #expect(await a.isApplied(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 4)) == false)
        #expect(await a.isApplied(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 3, target: "gw-1")) == false)
        #expect(await a.isApplied(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 3, target: "gw-9")) == false)
        #expect(await a.isApplied(Data("garbage".utf8)) == false)
    }

    @Test func aConfigFromTheOtherSourcesTopicIsAWrongTarget() async throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let a = try ConfigApplier(store: ConfigStore(stateDirectory: dir.path), verifier: Fleet.verifier(), target: RecordingTarget())
        let onGatewayTopic = await a.apply(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 1), from: .gateway, now: Fleet.now)
        #expect(onGatewayTopic.state == .rejected)
        #expect(onGatewayTopic.reason == "wrong_target")
        #expect(onGatewayTopic.source == .fleet)
        let right = await a.apply(try Fleet.signed(#"{"cache":{"ttl_s":1}}"#, version: 1, target: "gw-1"), from: .gateway, now: Fleet.now)
        #expect(right.state == .applied)
        #expect(right.source == .gateway)
    }
}
