import Testing
import OutpostCore
@testable import AnswerCache

@Suite struct WriteBehindQueueStateMachineTests {
    typealias Machine = WriteBehindQueue.StateMachine
    let ms: UInt64 = 1_000_000

    func fills(_ action: WriteBehindQueue.Action) -> [CachedEntry]? {
        if case .flush(let batch) = action { return batch.fills }
        return nil
    }

    @Test func idleUntilTheFirstFillThenWaitsForTheInterval() {
        var m = Machine(capacity: 10, batchSize: 4, flushIntervalNanos: 100 * ms)
        guard case .idle = m.nextAction(nowNanos: 0) else { Issue.record("expected idle"); return }
        // The flusher is idle, so the first fill must wake it.
        do { let r = m.enqueue(testEntry(1, hlc: 1), nowNanos: 10 * ms); #expect(r == .queued(wakeFlusher: true)) }
        do { let r = m.enqueue(testEntry(2, hlc: 2), nowNanos: 20 * ms); #expect(r == .queued(wakeFlusher: false)) }
        guard case .wait(let until) = m.nextAction(nowNanos: 30 * ms) else { Issue.record("expected wait"); return }
        #expect(until == 110 * ms)
        let batch = fills(m.nextAction(nowNanos: 110 * ms))
        #expect(batch?.map(\.key) == [testKey(1), testKey(2)])
        #expect(m.flushing)
        m.flushCompleted()
        #expect(m.isDrained)
        guard case .idle = m.nextAction(nowNanos: 120 * ms) else { Issue.record("expected idle"); return }
    }

    @Test func fullBatchWakesTheFlusherAndIsCutAtBatchSize() {
        var m = Machine(capacity: 100, batchSize: 3, flushIntervalNanos: 100 * ms)
        do { let r = m.enqueue(testEntry(1, hlc: 1), nowNanos: 0); #expect(r == .queued(wakeFlusher: false)) }
        do { let r = m.enqueue(testEntry(2, hlc: 2), nowNanos: 0); #expect(r == .queued(wakeFlusher: false)) }
        do { let r = m.enqueue(testEntry(3, hlc: 3), nowNanos: 0); #expect(r == .queued(wakeFlusher: true)) }
        do { let r = m.enqueue(testEntry(4, hlc: 4), nowNanos: 0); #expect(r == .queued(wakeFlusher: false)) }
        do { let r = fills(m.nextAction(nowNanos: 1))?.map(\.key); #expect(r == [testKey(1), testKey(2), testKey(3)]) }
        m.flushCompleted()
        #expect(m.depth == 1)
        // What is left waits for its own interval.
        guard case .wait = m.nextAction(nowNanos: 2) else { Issue.record("expected wait"); return }
        do { let r = fills(m.nextAction(nowNanos: 2 + 100 * ms))?.map(\.key); #expect(r == [testKey(4)]) }
    }

    @Test func backlogIsTakenInLargerTransactionsUpToTheMaximum() {
        var m = Machine(capacity: 100, batchSize: 3, maxBatchSize: 5, flushIntervalNanos: 100 * ms)
        for i in 0..<12 { _ = m.enqueue(testEntry(i, hlc: UInt64(i + 1)), nowNanos: 0) }
        var sizes: [Int] = []
        for _ in 0..<2 {
            guard case .flush(let batch) = m.nextAction(nowNanos: 1) else { Issue.record("expected flush"); return }
            sizes.append(batch.fills.count)
            m.flushCompleted()
        }
        // Two transactions of five; the last two are fewer than a batch and wait for their interval.
        #expect(sizes == [5, 5])
        guard case .wait = m.nextAction(nowNanos: 2) else { Issue.record("expected wait"); return }
        #expect(m.depth == 2)
    }

    @Test func fillsAreCoalescedPerKeyKeepingTheNewest() {
        var m = Machine(capacity: 10, batchSize: 10, flushIntervalNanos: 0)
        _ = m.enqueue(testEntry(1, hlc: 5, text: "old"), nowNanos: 0)
        _ = m.enqueue(testEntry(2, hlc: 6), nowNanos: 0)
        do { let r = m.enqueue(testEntry(1, hlc: 7, text: "new"), nowNanos: 0); #expect(r == .coalesced) }
        do { let r = m.enqueue(testEntry(1, hlc: 4, text: "older"), nowNanos: 0); #expect(r == .superseded) }
        #expect(m.depth == 2)
        let batch = fills(m.nextAction(nowNanos: 0))
        // The key keeps its first place in the queue, with the newest answer.
        #expect(batch?.map(\.key) == [testKey(1), testKey(2)])
        #expect(batch?.first?.answer.text == "new")
    }

    @Test func fullQueueDropsAndNeverBlocks() {
        var m = Machine(capacity: 2, batchSize: 10, flushIntervalNanos: 100 * ms)
        _ = m.enqueue(testEntry(1, hlc: 1), nowNanos: 0)
        _ = m.enqueue(testEntry(2, hlc: 2), nowNanos: 0)
        do { let r = m.enqueue(testEntry(3, hlc: 3), nowNanos: 0); #expect(r == .dropped) }
        // Coalescing into a queued key still works when full.
        do { let r = m.enqueue(testEntry(2, hlc: 4), nowNanos: 0); #expect(r == .coalesced) }
        #expect(m.depth == 2)
    }

    @Test func invalidationRemovesCoveredQueuedFillsAndDiscardsLateOnes() {
        var m = Machine(capacity: 10, batchSize: 10, flushIntervalNanos: 100 * ms)
        _ = m.enqueue(testEntry(1, hlc: 10, tags: ["weather"]), nowNanos: 0)
        _ = m.enqueue(testEntry(2, hlc: 11), nowNanos: 0)
        _ = m.enqueue(testEntry(3, hlc: 30, tags: ["weather"]), nowNanos: 0)
        // Stamped 20: removes fill 1 (older, tagged) but not fill 3 (newer) nor fill 2 (untagged).
        do { let r = m.invalidate(Tombstone(scope: .tag("weather"), hlc: HLCTimestamp(rawValue: 20))); #expect(r == 1) }
        #expect(m.pendingFill(for: testKey(1)) == nil)
        #expect(m.depth == 2)
        // A late fill older than the tombstone is discarded; a newer one is accepted.
        do { let r = m.enqueue(testEntry(4, hlc: 15, tags: ["weather", "x"]), nowNanos: 0); #expect(r == .discarded) }
        do { let r = m.enqueue(testEntry(4, hlc: 25, tags: ["weather"]), nowNanos: 0); #expect(r == .queued(wakeFlusher: false)) }
        _ = m.invalidate(Tombstone(scope: .key(testKey(2)), hlc: HLCTimestamp(rawValue: 40)))
        _ = m.invalidate(Tombstone(scope: .namespace("default"), hlc: HLCTimestamp(rawValue: 26)))
        #expect(m.depth == 1)
        do { let r = m.enqueue(testEntry(5, hlc: 26), nowNanos: 0); #expect(r == .discarded) }
        _ = m.invalidate(Tombstone(scope: .all, hlc: HLCTimestamp(rawValue: 100)))
        #expect(m.depth == 0)
        do { let r = m.enqueue(testEntry(6, hlc: 100, namespace: "other"), nowNanos: 0); #expect(r == .discarded) }
        do { let r = m.enqueue(testEntry(6, hlc: 101, namespace: "other"), nowNanos: 0); #expect(r == .queued(wakeFlusher: false)) }
    }

    @Test func fillQueuedThenInvalidatedNeverReachesABatch() {
        var m = Machine(capacity: 10, batchSize: 10, flushIntervalNanos: 0)
        _ = m.enqueue(testEntry(1, hlc: 1), nowNanos: 0)
        _ = m.invalidate(Tombstone(scope: .key(testKey(1)), hlc: HLCTimestamp(rawValue: 2)))
        guard case .idle = m.nextAction(nowNanos: 1_000 * ms) else { Issue.record("expected idle"); return }
    }

    @Test func closeDrainsEverythingThenFinishes() {
        var m = Machine(capacity: 10, batchSize: 2, flushIntervalNanos: 100 * ms)
        for i in 1...5 { _ = m.enqueue(testEntry(i, hlc: UInt64(i)), nowNanos: 0) }
        do { let r = m.close(); #expect(r) }
        do { let r = m.close(); #expect(!r) }
        do { let r = m.enqueue(testEntry(9, hlc: 9), nowNanos: 0); #expect(r == .closed) }
        var written: [CacheKey] = []
        loop: while true {
            switch m.nextAction(nowNanos: 0) {
            case .flush(let batch):
                #expect(batch.fills.count <= 2)
                written += batch.fills.map(\.key)
                m.flushCompleted()
            case .finish: break loop
            case .wait, .idle:
                Issue.record("a draining queue must not wait")
                break loop
            }
        }
        #expect(written == (1...5).map { testKey($0) })
        #expect(m.state == .finished)
    }

    @Test func requestFlushSkipsTheInterval() {
        var m = Machine(capacity: 10, batchSize: 10, flushIntervalNanos: 100 * ms)
        do { let r = m.requestFlush(); #expect(!r) }
        _ = m.enqueue(testEntry(1, hlc: 1), nowNanos: 0)
        guard case .wait = m.nextAction(nowNanos: 1) else { Issue.record("expected wait"); return }
        do { let r = m.requestFlush(); #expect(r) }
        do { let r = fills(m.nextAction(nowNanos: 2))?.count; #expect(r == 1) }
    }

    @Test func touchesAreCoalescedBoundedAndFlushed() {
        var m = Machine(capacity: 10, batchSize: 10, flushIntervalNanos: 100 * ms, touchCapacity: 2)
        m.touch(testKey(1), millis: 5, nowNanos: 0)
        m.touch(testKey(1), millis: 6, nowNanos: 0)
        m.touch(testKey(2), millis: 7, nowNanos: 0)
        m.touch(testKey(3), millis: 8, nowNanos: 0)
        guard case .flush(let batch) = m.nextAction(nowNanos: 100 * ms) else { Issue.record("expected flush"); return }
        #expect(batch.fills.isEmpty)
        let touched = Dictionary(uniqueKeysWithValues: batch.touches.map { ($0.key, $0.millis) })
        #expect(touched == [testKey(1): 6, testKey(2): 7])
    }
}

@Suite struct MemoryTierTests {
    @Test func evictsLeastRecentlyUsedWithinTheByteBudget() {
        let cost = testEntry(0, hlc: 0, text: String(repeating: "x", count: 100)).memoryCost
        var tier = MemoryTier(budgetBytes: cost * 3)
        for i in 0..<3 { tier.insert(testEntry(i, hlc: 0, text: String(repeating: "x", count: 100))) }
        #expect(tier.count == 3)
        _ = tier.get(testKey(0))
        tier.insert(testEntry(3, hlc: 0, text: String(repeating: "x", count: 100)))
        #expect(tier.count == 3)
        #expect(tier.peek(testKey(1)) == nil)
        #expect(tier.keysByRecency == [testKey(3), testKey(0), testKey(2)])
        #expect(tier.bytes <= tier.budgetBytes)
        #expect(tier.evictions == 1)
    }

    @Test func oversizedEntryIsNotKeptAndReplacementAccountsBytes() {
        var tier = MemoryTier(budgetBytes: 1000)
        tier.insert(testEntry(1, hlc: 0, text: "small"))
        let small = tier.bytes
        tier.insert(testEntry(2, hlc: 0, text: String(repeating: "y", count: 5000)))
        #expect(tier.peek(testKey(2)) == nil)
        #expect(tier.bytes == small)
        tier.insert(testEntry(1, hlc: 1, text: "a bit longer"))
        #expect(tier.bytes == testEntry(1, hlc: 1, text: "a bit longer").memoryCost)
        tier.insert(testEntry(1, hlc: 2, text: String(repeating: "z", count: 5000)))
        #expect(tier.count == 0)
        #expect(tier.bytes == 0)
    }

    @Test func randomisedOperationsKeepTheInvariants() {
        var tier = MemoryTier(budgetBytes: 4000)
        var generator = SystemRandomNumberGenerator()
        for step in 0..<5000 {
            let n = Int.random(in: 0..<64, using: &generator)
            switch Int.random(in: 0..<4, using: &generator) {
            case 0, 1: tier.insert(testEntry(n, hlc: UInt64(step), text: String(repeating: "a", count: Int.random(in: 0..<600))))
            case 2: _ = tier.get(testKey(n))
            default: tier.remove(testKey(n))
            }
            #expect(tier.bytes <= 4000)
            #expect(tier.keysByRecency.count == tier.count)
        }
        tier.removeAll { _ in true }
        #expect(tier.count == 0 && tier.bytes == 0)
    }
}
