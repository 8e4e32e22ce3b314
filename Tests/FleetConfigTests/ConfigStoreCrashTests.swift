import Foundation
import OutpostCore
import OutpostTesting
import Testing
@testable import FleetConfig

/// A crash is simulated by running a prefix of the apply's durable steps, optionally leaving the
/// next temporary file half-written, then opening the store afresh as a restarted agent would.
@Suite struct ConfigStoreCrashTests {
    static let old = try! ConfigRecord(versions: .init(fleet: 1),
                                       fleet: FleetSettings(payload: Array(#"{"model":{"path":"/old"},"cache":{"ttl_s":10}}"#.utf8)))
    static let new = try! ConfigRecord(versions: .init(fleet: 2),
                                       fleet: FleetSettings(payload: Array(#"{"model":{"path":"/new"},"cache":{"ttl_s":20}}"#.utf8)),
                                       state: .pending)

    /// Every step of a full apply: persist then commit.
    static func steps(_ store: ConfigStore) -> [ConfigStore.Step] {
        store.plan(persist: new, lastKnownGood: old) + store.plan(commit: new)
    }

    func freshStore(_ dir: TemporaryDirectory) throws -> ConfigStore {
        let store = try ConfigStore(stateDirectory: dir.path)
        try store.run(store.plan(commit: Self.old))
        try store.run(store.plan(persist: Self.old, lastKnownGood: Self.old))  // versions file: fleet 1
        try store.run(store.plan(commit: Self.old))
        return store
    }

    @Test func stepCountCoversEveryFile() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        #expect(Self.steps(try ConfigStore(stateDirectory: dir.path)).count == 12)
    }

    @Test(arguments: 0...12, [false, true])
    func crashAtAnyStepLeavesExactlyOldOrNewLive(completed: Int, tornWrite: Bool) throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let store = try freshStore(dir)
        let steps = Self.steps(store)
        try store.run(Array(steps.prefix(completed)))
        if tornWrite, completed < steps.count, case .writeTemporary(let name, let data) = steps[completed] {
            try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: store.directory).appendingPathComponent(name + ".tmp"))
        }

        let restarted = try ConfigStore(stateDirectory: dir.path)
        let (live, rolledBack) = try restarted.recover()
        var committedNew = Self.new
        committedNew.state = .committed
        let expected = completed >= 11 ? committedNew : Self.old  // step 10 renames the commit in
        #expect(live == expected, "after \(completed) steps")
        #expect(try restarted.committed() == expected)
        #expect(live.effective["cache", "ttl_s"] == (expected == Self.old ? JSONValue.number(10) : JSONValue.number(20)))
        // Rolled back exactly when the pending candidate was renamed in but not yet committed.
        #expect(rolledBack == (completed >= 8 && completed < 11))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: restarted.directory).filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)
        // The version is consumed once persisted: a redelivery is a replay, not a second attempt.
        #expect(try restarted.appliedVersions().fleet == (completed >= 5 ? 2 : 1))
    }

    @Test func unreadableCommittedRecordIsReportedNotIgnored() throws {
        let dir = try TemporaryDirectory(); defer { dir.remove() }
        let store = try freshStore(dir)
        try Data("{\"state\":".utf8).write(to: URL(fileURLWithPath: store.directory).appendingPathComponent(ConfigStore.committedFile))
        expectFailure("storage") { _ = try store.recover() }
    }
}
