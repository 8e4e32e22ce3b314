import Foundation
import OutpostCore
import OutpostTesting
import Testing
@testable import AnswerCache

/// `AnswerCache.reconfigure`: each limit changed while the flusher runs takes effect, on real
/// SQLite files.
@Suite struct ReconfigureTests {
    /// Polls `condition` (the flusher works on its own thread) for up to `timeout` seconds.
    static func eventually(_ what: String, timeout: Double = 10, _ condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try condition() { return true }
            usleep(5_000)
        }
        if try condition() { return true }
        Issue.record("timed out waiting for: \(what)")
        return false
    }

    static func noise(_ n: Int) -> String {
        var g = SystemRandomNumberGenerator()
        return String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 97...122, using: &g))) })
    }

    static func settings(_ c: AnswerCache, _ change: (inout AnswerCache.Settings) -> Void) throws {
        var s = c.settings
        change(&s)
        try c.reconfigure(s)
        #expect(c.settings == s)
    }

    @Test func memoryBudgetShrinksAtOnceAndGrows() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.memoryBudgetBytes = 1 << 20
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<1000 { cache.fill(testKey(i), answer: Answer(text: String(repeating: "m", count: 300))) }
        let before = cache.stats()
        #expect(before.memoryEntries == 1000 && before.memoryEvictions == 0)
        #expect(before.memoryBytes > 64 << 10)

        try Self.settings(cache) { $0.memoryBudgetBytes = 64 << 10 }
        let shrunk = cache.stats()
        #expect(shrunk.memoryBytes <= 64 << 10)
        #expect(shrunk.memoryEvictions > 0 && shrunk.memoryEntries < 1000)
        // Least recently used went first: the newest fill is still in memory.
        #expect(cache.core.state.withLock { $0.memory.peek(testKey(999)) } != nil)
        #expect(cache.core.state.withLock { $0.memory.peek(testKey(0)) } == nil)

        try Self.settings(cache) { $0.memoryBudgetBytes = 1 << 20 }
        for i in 1000..<2000 { cache.fill(testKey(i), answer: Answer(text: String(repeating: "m", count: 300))) }
        let grown = cache.stats()
        #expect(grown.memoryBytes > 64 << 10 && grown.memoryBytes <= 1 << 20)
        #expect(grown.memoryEvictions == shrunk.memoryEvictions)
        // Evicted from memory, still answered from disk.
        cache.flush()
        #expect(cache.lookup(testKey(0)) != .miss)
    }

    @Test func diskBudgetIsEnforcedByLastAccessWhenShrunk() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        var configuration = makeConfiguration(dir, clock: clock)
        configuration.memoryBudgetBytes = 0
        configuration.diskBudgetBytes = 64 << 20
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<2000 {
            clock.advance(1)
            cache.fill(testKey(i), answer: Answer(text: Self.noise(400)))
        }
        cache.flush()
        clock.advance(1)
        #expect(cache.lookup(testKey(0)) != .miss)  // key 0 is now the most recently accessed
        cache.flush()
        let before = cache.stats()
        #expect(before.entries == 2000 && before.diskEvictions == 0)
        #expect(before.bytes > 256 << 10)

        try Self.settings(cache) { $0.diskBudgetBytes = 256 << 10 }
        clock.advance(1)
        cache.fill(testKey(5000), answer: Answer(text: "after"))
        cache.flush()
        _ = Self.eventually("the store within its new budget") { cache.stats().bytes <= 256 << 10 }
        let after = cache.stats()
        #expect(after.diskEvictions > 0 && after.entries < 2000)
        #expect(cache.lookup(testKey(0)) != .miss)
        #expect(cache.lookup(testKey(1)) == .miss)
        #expect(cache.lookup(testKey(5000)) != .miss)
        #expect(try cache.integrityCheck() == ["ok"])
    }

    @Test func aShorterFlushIntervalFlushesWhatWaits() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.flushIntervalMillis = AnswerCache.Settings.maxFlushIntervalMillis
        configuration.batchSize = 10_000
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<10 { cache.fill(testKey(i), answer: Answer(text: "a \(i)")) }
        usleep(200_000)
        #expect(cache.stats().flushed == 0 && cache.stats().queueDepth == 10)

        try Self.settings(cache) { $0.flushIntervalMillis = 20 }
        _ = Self.eventually("the waiting fills flushed") { cache.stats().flushed == 10 }
        // And the new interval holds for the next fills.
        cache.fill(testKey(10), answer: Answer(text: "a 10"))
        _ = Self.eventually("the next fill flushed") { cache.stats().flushed == 11 }
        #expect(try cache.storedKeys().count == 11)
    }

    @Test func aSmallerBatchSizeFlushesWhatWaits() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.flushIntervalMillis = AnswerCache.Settings.maxFlushIntervalMillis
        configuration.batchSize = 1000
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<50 { cache.fill(testKey(i), answer: Answer(text: "a \(i)")) }
        usleep(100_000)
        #expect(cache.stats().flushed == 0)

        try Self.settings(cache) { $0.batchSize = 50 }
        _ = Self.eventually("a batch of 50 flushed") { cache.stats().flushed == 50 }
        for i in 50..<99 { cache.fill(testKey(i), answer: Answer(text: "a \(i)")) }
        usleep(100_000)
        #expect(cache.stats().flushed == 50)  // 49 wait: under the batch size, and the interval is long
        cache.fill(testKey(99), answer: Answer(text: "a 99"))
        _ = Self.eventually("the second batch flushed") { cache.stats().flushed == 100 }
    }

    @Test func aSmallerQueueCapacityKeepsWhatIsQueuedAndDropsNewFills() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.flushIntervalMillis = AnswerCache.Settings.maxFlushIntervalMillis
        configuration.batchSize = 10_000
        configuration.queueCapacity = 100
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<80 { #expect(cache.fill(testKey(i), answer: Answer(text: "a \(i)")) != .dropped) }

        try Self.settings(cache) { $0.queueCapacity = 50 }
        #expect(cache.stats().queueDepth == 80)
        #expect(cache.fill(testKey(80), answer: Answer(text: "a 80")) == .dropped)
        // A refill of a queued key takes no new place in the queue.
        #expect(cache.fill(testKey(3), answer: Answer(text: "a 3 again")) != .dropped)
        #expect(cache.stats().fillsDropped == 1)
        cache.flush()
        #expect(cache.stats().flushed == 80)
        #expect(try cache.storedKeys().count == 80)
        for i in 100..<150 { #expect(cache.fill(testKey(i), answer: Answer(text: "a \(i)")) != .dropped) }
        #expect(cache.fill(testKey(150), answer: Answer(text: "a 150")) == .dropped)

        try Self.settings(cache) { $0.queueCapacity = 200 }
        #expect(cache.fill(testKey(150), answer: Answer(text: "a 150")) != .dropped)
        #expect(cache.stats().fillsDropped == 2)
    }

    @Test func invalidSettingsAreRefusedAndChangeNothing() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let cache = try AnswerCache(configuration: makeConfiguration(dir))
        defer { cache.close() }
        let before = cache.settings
        for change: (inout AnswerCache.Settings) -> Void in [
            { $0.diskBudgetBytes = 0 }, { $0.batchSize = 0 }, { $0.queueCapacity = 0 },
            { $0.flushIntervalMillis = AnswerCache.Settings.maxFlushIntervalMillis + 1 },
        ] {
            var s = before
            change(&s)
            #expect(throws: AnswerCacheError.self) { try cache.reconfigure(s) }
            #expect(cache.settings == before)
        }
    }

    @Test func stateMachineReconfiguredStepByStep() {
        var q = WriteBehindQueue.StateMachine(capacity: 4, batchSize: 100, flushIntervalNanos: 1_000_000_000)
        for i in 0..<4 { #expect(q.enqueue(testEntry(i, hlc: 10), nowNanos: 0) != .dropped) }
        guard case .wait(let until) = q.nextAction(nowNanos: 1) else { Issue.record("not waiting"); return }
        #expect(until == 1_000_000_000)
        // Shrinking the capacity keeps the four; a fifth is dropped.
        #expect(q.reconfigure(capacity: 2, batchSize: 100, flushIntervalNanos: 1_000_000_000) == false)
        #expect(q.depth == 4)
        #expect(q.enqueue(testEntry(4, hlc: 10), nowNanos: 2) == .dropped)
        // A shorter interval asks for a wake-up and makes the batch due now.
        #expect(q.reconfigure(capacity: 2, batchSize: 100, flushIntervalNanos: 1) == true)
        guard case .flush(let batch) = q.nextAction(nowNanos: 3) else { Issue.record("no flush"); return }
        #expect(batch.fills.count == 4)
        q.flushCompleted()
        #expect(q.enqueue(testEntry(5, hlc: 10), nowNanos: 4) != .dropped)
    }
}
