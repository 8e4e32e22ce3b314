import Foundation
@testable import Agent
import OutpostCore
import Synchronization
import Testing

/// The scheduler's queue without a model: a job whose caller leaves while it waits gives its
/// place back at once, not when the running generation finishes.
@Suite struct GenerationSchedulerTests {
    /// A job that runs until released (polling its flag as a generation does between tokens).
    final class Gate: Sendable {
        let open = Atomic<Bool>(false)
        let started = Atomic<Bool>(false)
    }

    static func blockingJob(_ gate: Gate) -> @Sendable (GenerationScheduler.CancelFlag) throws -> Int {
        { flag in
            gate.started.store(true, ordering: .sequentiallyConsistent)
            while !gate.open.load(ordering: .sequentiallyConsistent) {
                if flag.isSet { throw CancellationError() }
                usleep(1000)
            }
            return 1
        }
    }

    static func waitFor(_ what: String, _ condition: () -> Bool) async throws {
        let deadline = Date().addingTimeInterval(10)
        while !condition() {
            guard Date() < deadline else {
                Issue.record("timed out waiting for \(what)")
                throw CancellationError()
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test func aQueuedJobWhoseCallerLeavesFreesItsPlaceAtOnce() async throws {
        let scheduler = GenerationScheduler(maxQueued: 1)
        let gate = Gate()
        let running = Task { try await scheduler.run(Self.blockingJob(gate)) }
        try await Self.waitFor("first job running") { gate.started.load(ordering: .sequentiallyConsistent) }
        let ran = Atomic<Bool>(false)
        let queued = Task { try await scheduler.run { _ in ran.store(true, ordering: .sequentiallyConsistent); return 2 } }
        try await Self.waitFor("second job queued") { scheduler.depth == 2 }
        // Full: one running, one waiting.
        await #expect(throws: ServiceError.self) { try await scheduler.run { _ in 3 } }

        // The caller returns while the first job still runs (the gate stays shut until the end):
        // before, it waited for its turn, i.e. for the running generation to end.
        queued.cancel()
        await #expect(throws: CancellationError.self) { try await queued.value }
        let firstStillRunning = !gate.open.load(ordering: .sequentiallyConsistent)
        #expect(firstStillRunning)
        #expect(scheduler.depth == 1)
        // Its place is free while the first still runs.
        let flag = GenerationScheduler.CancelFlag()
        let third = Task { try await scheduler.run(cancelledBy: flag) { _ in 4 } }
        try await Self.waitFor("third job queued") { scheduler.depth == 2 }
        // Cancelled through its flag (as the shared cache path does when the client leaves).
        flag.set()
        await #expect(throws: CancellationError.self) { try await third.value }
        #expect(scheduler.depth == 1)

        gate.open.store(true, ordering: .sequentiallyConsistent)
        #expect(try await running.value == 1)
        #expect(scheduler.depth == 0)
        let queuedJobRan = ran.load(ordering: .sequentiallyConsistent)
        #expect(!queuedJobRan)
        // The queue still works afterwards.
        #expect(try await scheduler.run { _ in 5 } == 5)
    }

    @Test func aRunningJobStopsAtItsNextStepWhenCancelled() async throws {
        let scheduler = GenerationScheduler(maxQueued: 4)
        let gate = Gate()
        let running = Task { try await scheduler.run(Self.blockingJob(gate)) }
        try await Self.waitFor("running") { gate.started.load(ordering: .sequentiallyConsistent) }
        running.cancel()
        await #expect(throws: CancellationError.self) { try await running.value }
        #expect(scheduler.depth == 0)
    }
}
