import Foundation
import Synchronization
import Testing
import OutpostCore
import OutpostTesting
@testable import AnswerCache

/// A wall clock the test moves by hand.
final class ManualClock: Sendable {
    private let millis: Atomic<UInt64>
    init(_ start: UInt64 = 1_800_000_000_000) { millis = Atomic(start) }
    var now: UInt64 { millis.load(ordering: .relaxed) }
    func advance(_ delta: UInt64) { millis.add(delta, ordering: .relaxed) }
    var wallClock: HybridLogicalClock.WallClock { { [self] in now } }
}

final class Counter: Sendable {
    private let count = Atomic<Int>(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

func makeConfiguration(_ dir: TemporaryDirectory, clock: ManualClock? = nil, name: String = "cache.sqlite") -> AnswerCache.Configuration {
    var configuration = AnswerCache.Configuration(path: dir.file(name).path)
    if let clock { configuration.wallClock = clock.wallClock }
    configuration.flushIntervalMillis = 5
    return configuration
}

func fileBytes(_ url: URL) throws -> Data { try Data(contentsOf: url) }

@Suite struct AnswerCacheTests {
    @Test func fillIsServedFromMemoryThenFromDiskAfterReopening() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configuration = makeConfiguration(dir)
        do {
            let cache = try AnswerCache(configuration: configuration)
            #expect(cache.lookup(testKey(1)) == .miss)
            guard case .queued = cache.fill(testKey(1), answer: Answer(text: "Paris", promptTokens: 12, completionTokens: 2)) else {
                Issue.record("fill not queued"); return
            }
            #expect(cache.lookup(testKey(1)) == .fresh(Answer(text: "Paris", promptTokens: 12, completionTokens: 2)))
            cache.close()
            let stats = cache.stats()
            #expect(stats.hits == 1 && stats.misses == 1 && stats.fills == 1 && stats.flushed == 1)
            #expect(stats.entries == 1 && stats.queueDepth == 0)
        }
        let reopened = try AnswerCache(configuration: configuration)
        defer { reopened.close() }
        #expect(reopened.stats().memoryEntries == 0)
        #expect(reopened.lookup(testKey(1)) == .fresh(Answer(text: "Paris", promptTokens: 12, completionTokens: 2)))
        #expect(reopened.stats().memoryEntries == 1)
        #expect(reopened.lookup(testKey(2)) == .miss)
    }

    @Test func largeAnswersAreCompressedAndRoundTrip() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.memoryBudgetBytes = 0
        let cache = try AnswerCache(configuration: configuration)
        let text = String(repeating: "The answer is forty-two. ", count: 400)
        cache.fill(testKey(1), answer: Answer(text: text, finishReason: .length))
        cache.fill(testKey(2), answer: Answer(text: "short"))
        cache.flush()
        #expect(cache.lookup(testKey(1)) == .fresh(Answer(text: text, finishReason: .length)))
        #expect(cache.lookup(testKey(2)) == .fresh(Answer(text: "short")))
        cache.close()
        let db = try SQLiteDatabase(path: configuration.path)
        #expect(try db.scalarInt("SELECT codec FROM entries WHERE raw_size > 1000") == 1)
        #expect(try db.scalarInt("SELECT length(value) FROM entries WHERE codec = 1")! < Int64(text.utf8.count / 10))
        #expect(try db.scalarInt("SELECT codec FROM entries WHERE raw_size < 100") == 0)
    }

    @Test func ttlAndStaleWhileRevalidateFollowTheClock() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let cache = try AnswerCache(configuration: makeConfiguration(dir, clock: clock))
        defer { cache.close() }
        let answer = Answer(text: "sunny")
        cache.fill(testKey(1), answer: answer, ttlMillis: 1000, staleWhileRevalidateMillis: 500)
        cache.fill(testKey(2), answer: answer, ttlMillis: 1000, staleWhileRevalidateMillis: 500)
        cache.flush()
        #expect(cache.lookup(testKey(1)) == .fresh(answer))
        clock.advance(999)
        #expect(cache.lookup(testKey(1)) == .fresh(answer))
        clock.advance(1)
        #expect(cache.lookup(testKey(1)) == .stale(answer))
        clock.advance(499)
        #expect(cache.lookup(testKey(1)) == .stale(answer))
        clock.advance(1)
        #expect(cache.lookup(testKey(1)) == .miss)
        // The same rules hold for an entry read from disk.
        let reopened = try AnswerCache(configuration: makeConfiguration(dir, clock: clock, name: "cache.sqlite"))
        defer { reopened.close() }
        #expect(reopened.lookup(testKey(2)) == .miss)
        let stats = cache.stats()
        #expect(stats.hits == 2 && stats.staleHits == 2 && stats.misses == 1)
    }

    @Test func staleEntriesFromDiskAreStale() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let configuration = makeConfiguration(dir, clock: clock)
        do {
            let cache = try AnswerCache(configuration: configuration)
            cache.fill(testKey(1), answer: Answer(text: "x"), ttlMillis: 100, staleWhileRevalidateMillis: 1000)
            cache.close()
        }
        clock.advance(500)
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        #expect(cache.lookup(testKey(1)) == .stale(Answer(text: "x")))
    }

    @Test func invalidationByKeyTagNamespaceAndAll() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configuration = makeConfiguration(dir)
        let cache = try AnswerCache(configuration: configuration)
        let a = Answer(text: "a")
        cache.fill(testKey(1), answer: a)
        cache.fill(testKey(2), answer: a, tags: ["weather", "paris"])
        cache.fill(testKey(3), answer: a, tags: ["weather"])
        cache.fill(testKey(4), answer: a, namespace: "tenant-b")
        cache.fill(testKey(5), answer: a, namespace: "tenant-b", tags: ["paris"])
        cache.fill(testKey(6), answer: a, tags: ["weatherman"])
        cache.flush()

        try cache.invalidate(.key(testKey(1)))
        #expect(cache.lookup(testKey(1)) == .miss)
        try cache.invalidate(.tag("weather"))
        #expect(cache.lookup(testKey(2)) == .miss)
        #expect(cache.lookup(testKey(3)) == .miss)
        #expect(cache.lookup(testKey(6)) == .fresh(a)) // "weatherman" is another tag
        try cache.invalidate(.namespace("tenant-b"))
        #expect(cache.lookup(testKey(4)) == .miss)
        #expect(cache.lookup(testKey(5)) == .miss)
        #expect(Set(try cache.storedKeys()) == [testKey(6)])
        // A fill after the invalidation is new information and stays.
        cache.fill(testKey(3), answer: Answer(text: "newer"), tags: ["weather"])
        #expect(cache.lookup(testKey(3)) == .fresh(Answer(text: "newer")))
        try cache.invalidate(.all)
        #expect(cache.lookup(testKey(3)) == .miss)
        #expect(cache.lookup(testKey(6)) == .miss)
        cache.close()
        #expect(try cache.storedKeys().isEmpty)
        #expect(cache.stats().invalidationsApplied == 4)
        #expect(throws: AnswerCacheError.self) { try cache.invalidate(.tag("")) }
    }

    @Test func fillQueuedThenInvalidatedNeverAppears() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.flushIntervalMillis = 60_000 // nothing is flushed on its own
        let cache = try AnswerCache(configuration: configuration)
        for i in 0..<100 { cache.fill(testKey(i), answer: Answer(text: "v\(i)"), tags: i % 2 == 0 ? ["even"] : []) }
        #expect(cache.stats().queueDepth == 100)
        try cache.invalidate(.tag("even"))
        #expect(cache.stats().queueDepth == 50)
        cache.close()
        let stored = Set(try cache.storedKeys())
        #expect(stored == Set((0..<100).filter { $0 % 2 == 1 }.map { testKey($0) }))
        let reopened = try AnswerCache(configuration: configuration)
        defer { reopened.close() }
        #expect(reopened.lookup(testKey(0)) == .miss)
        #expect(reopened.lookup(testKey(1)) == .fresh(Answer(text: "v1")))
    }

    @Test func lateFillOlderThanATombstoneIsDiscardedEvenAfterRestart() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configuration = makeConfiguration(dir)
        let startedAt: HLCTimestamp
        do {
            let cache = try AnswerCache(configuration: configuration)
            // A computation starts, an invalidation lands while it runs, then it fills.
            startedAt = cache.clock.tick()
            try cache.invalidate(.namespace("default"))
            #expect(cache.fill(testKey(1), answer: Answer(text: "old"), startedAt: startedAt) == .discarded)
            #expect(cache.lookup(testKey(1)) == .miss)
            cache.close()
        }
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        #expect(cache.clock.last > startedAt)
        #expect(cache.fill(testKey(1), answer: Answer(text: "old"), startedAt: startedAt) == .discarded)
        #expect(cache.stats().tombstones == 1)
        guard case .queued = cache.fill(testKey(1), answer: Answer(text: "new")) else { Issue.record("not queued"); return }
    }

    @Test func sqlUpsertRefusesFillsCoveredByATombstone() throws {
        // The store's own guard, independent of the queue: write a batch that the queue would
        // have discarded, straight to the store.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try AnswerStore(options: .init(path: dir.file("s.sqlite").path, diskBudgetBytes: 1 << 30,
                                                   compressionThreshold: 512, compressionLevel: 3, maxAnswerBytes: 1 << 20))
        _ = try store.invalidate(Tombstone(scope: .tag("t"), hlc: HLCTimestamp(rawValue: 100)))
        _ = try store.invalidate(Tombstone(scope: .key(testKey(2)), hlc: HLCTimestamp(rawValue: 100)))
        _ = try store.invalidate(Tombstone(scope: .namespace("n"), hlc: HLCTimestamp(rawValue: 100)))
        let report = try store.write(.init(fills: [
            testEntry(1, hlc: 50, tags: ["a", "t"]),       // refused: tag
            testEntry(2, hlc: 100),                         // refused: key, same reading
            testEntry(3, hlc: 99, namespace: "n"),          // refused: namespace
            testEntry(4, hlc: 50, tags: ["tt", "a"]),       // kept: another tag
            testEntry(5, hlc: 101, tags: ["t"]),            // kept: newer than the tombstone
        ], touches: []))
        #expect(report.written == 2 && report.refused == 3)
        #expect(Set(try store.storedKeys()) == [testKey(4), testKey(5)])
        _ = try store.invalidate(Tombstone(scope: .all, hlc: HLCTimestamp(rawValue: 200)))
        let late = try store.write(.init(fills: [testEntry(6, hlc: 150)], touches: []))
        #expect(late.written == 0)
        // An older fill never overwrites a newer row.
        _ = try store.write(.init(fills: [testEntry(7, hlc: 300, text: "newer")], touches: []))
        _ = try store.write(.init(fills: [testEntry(7, hlc: 250, text: "older")], touches: []))
        #expect(try store.read(testKey(7))?.answer.text == "newer")
    }

    @Test func concurrentMissesComputeOnce() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let cache = try AnswerCache(configuration: makeConfiguration(dir))
        defer { cache.close() }
        let computations = Counter()
        let results = try await withThrowingTaskGroup(of: CachedValue.self) { group in
            for _ in 0..<32 {
                group.addTask {
                    try await cache.value(for: testKey(1)) {
                        computations.increment()
                        try await Task.sleep(for: .milliseconds(100))
                        return Answer(text: "computed once")
                    }
                }
            }
            var all: [CachedValue] = []
            for try await value in group { all.append(value) }
            return all
        }
        #expect(computations.value == 1)
        #expect(results.allSatisfy { $0.answer.text == "computed once" })
        let again = try await cache.value(for: testKey(1)) { Answer(text: "not called") }
        #expect(again == CachedValue(answer: Answer(text: "computed once"), source: .fresh))
    }

    @Test func failedComputationIsSharedAndNotCached() async throws {
        struct Boom: Error {}
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let cache = try AnswerCache(configuration: makeConfiguration(dir))
        defer { cache.close() }
        await #expect(throws: Boom.self) { try await cache.value(for: testKey(1)) { throw Boom() } }
        #expect(cache.lookup(testKey(1)) == .miss)
        let value = try await cache.value(for: testKey(1)) { Answer(text: "ok") }
        #expect(value.source == .computed)
    }

    @Test func staleValueIsServedAndRefreshedInTheBackground() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let cache = try AnswerCache(configuration: makeConfiguration(dir, clock: clock))
        defer { cache.close() }
        cache.fill(testKey(1), answer: Answer(text: "v1"), ttlMillis: 10, staleWhileRevalidateMillis: 10_000)
        clock.advance(20)
        let stale = try await cache.value(for: testKey(1)) { Answer(text: "v2") }
        #expect(stale == CachedValue(answer: Answer(text: "v1"), source: .stale))
        var refreshed = false
        for _ in 0..<200 where !refreshed {
            if cache.lookup(testKey(1)) == .fresh(Answer(text: "v2")) { refreshed = true } else { try await Task.sleep(for: .milliseconds(5)) }
        }
        #expect(refreshed)
    }

    @Test func memoryBudgetHolds() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.memoryBudgetBytes = 64 << 10
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        for i in 0..<2000 {
            cache.fill(testKey(i), answer: Answer(text: String(repeating: "m", count: 200 + i % 300)))
            #expect(cache.stats().memoryBytes <= 64 << 10)
        }
        let stats = cache.stats()
        #expect(stats.memoryEvictions > 0)
        #expect(stats.memoryEntries < 2000)
        // Evicted from memory, still served from disk.
        cache.flush()
        #expect(cache.lookup(testKey(0)).answer?.text.count == 200)
    }

    @Test func diskBudgetHoldsByEvictingLeastRecentlyAccessed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        var configuration = makeConfiguration(dir, clock: clock)
        configuration.diskBudgetBytes = 512 << 10
        configuration.memoryBudgetBytes = 0
        configuration.batchSize = 64
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        // Incompressible-ish text so the file really grows.
        var generator = SystemRandomNumberGenerator()
        func noise(_ n: Int) -> String { String((0..<n).map { _ in Character(Unicode.Scalar(UInt8.random(in: 97...122, using: &generator))) }) }
        cache.fill(testKey(0), answer: Answer(text: noise(400)))
        cache.flush()
        for i in 1..<3000 {
            clock.advance(1)
            cache.fill(testKey(i), answer: Answer(text: noise(400)))
            if i % 100 == 0 {
                // Key 0 keeps being read, so it is never the least recently accessed.
                #expect(cache.lookup(testKey(0)) != .miss)
            }
        }
        cache.flush()
        let stats = cache.stats()
        #expect(stats.bytes <= 512 << 10)
        #expect(stats.diskEvictions > 0)
        #expect(stats.entries < 3000)
        #expect(cache.lookup(testKey(0)) != .miss)
        #expect(cache.lookup(testKey(1)) == .miss)
        #expect(try cache.integrityCheck() == ["ok"])
    }

    @Test func oversizedAnswersAndBadLabelsAreDroppedNotCrashed() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.maxAnswerBytes = 1000
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        #expect(cache.fill(testKey(1), answer: Answer(text: String(repeating: "x", count: 1001))) == .dropped)
        #expect(cache.fill(testKey(2), answer: Answer(text: "x"), tags: ["bad\u{1F}tag"]) == .dropped)
        #expect(cache.fill(testKey(3), answer: Answer(text: "x"), namespace: "") == .dropped)
        #expect(cache.stats().fillsDropped == 3)
        #expect(cache.lookup(testKey(1)) == .miss)
    }

    @Test func fullQueueDropsFillsAndCountsThem() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.queueCapacity = 10
        configuration.batchSize = 1000
        configuration.flushIntervalMillis = 60_000
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        var dropped = 0
        for i in 0..<25 where cache.fill(testKey(i), answer: Answer(text: "x")) == .dropped { dropped += 1 }
        #expect(dropped == 15)
        #expect(cache.stats().fillsDropped == 15)
        #expect(cache.stats().queueDepth == 10)
    }

    @Test func corruptStoredValueIsAMissNotACrash() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        var configuration = makeConfiguration(dir)
        configuration.memoryBudgetBytes = 0
        do {
            let cache = try AnswerCache(configuration: configuration)
            cache.fill(testKey(1), answer: Answer(text: String(repeating: "compress me ", count: 200)))
            cache.fill(testKey(2), answer: Answer(text: "plain"))
            cache.fill(testKey(3), answer: Answer(text: "bomb"))
            cache.close()
        }
        let db = try SQLiteDatabase(path: configuration.path)
        try db.execute("UPDATE entries SET value = x'28b52ffd0000deadbeef' WHERE codec = 1")
        try db.execute("UPDATE entries SET value = x'09' WHERE raw_size = \(Answer(text: "plain").storageBytes.count)")
        // A decompression bomb: 64 MiB of zeros behind a declared raw size of 4 bytes.
        let bomb = try Zstd.compress([UInt8](repeating: 0, count: 64 << 20), level: 1)
        let hex = bomb.map { String(format: "%02x", $0) }.joined()
        try db.execute("UPDATE entries SET codec = 1, raw_size = 14, value = x'\(hex)' WHERE key = x'\(testKey(3).hex)'")
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        #expect(cache.lookup(testKey(1)) == .miss)
        #expect(cache.lookup(testKey(2)) == .miss)
        #expect(cache.lookup(testKey(3)) == .miss)
        #expect(cache.stats().readErrors == 3)
    }

    @Test func tombstonesExpireAfterTheHorizon() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        var configuration = makeConfiguration(dir, clock: clock)
        configuration.tombstoneHorizonMillis = 1000
        do {
            let cache = try AnswerCache(configuration: configuration)
            try cache.invalidate(.tag("old"))
            #expect(cache.stats().tombstones == 1)
            cache.close()
        }
        clock.advance(2000)
        let cache = try AnswerCache(configuration: configuration)
        defer { cache.close() }
        #expect(cache.stats().tombstones == 0)
        let db = try SQLiteDatabase(path: configuration.path)
        #expect(try db.scalarInt("SELECT count(*) FROM tombstones") == 0)
        // A fill stamped before the horizon cannot be vouched for and is refused.
        #expect(cache.fill(testKey(1), answer: Answer(text: "x"), startedAt: HLCTimestamp(wallMillis: clock.now - 1500, logical: 0)) == .discarded)
    }

    @Test func remoteTombstoneAdvancesTheClockAndFarFutureOnesAreRefused() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let cache = try AnswerCache(configuration: makeConfiguration(dir, clock: clock))
        defer { cache.close() }
        cache.fill(testKey(1), answer: Answer(text: "x"))
        let remote = Tombstone(scope: .key(testKey(1)), hlc: HLCTimestamp(wallMillis: clock.now + 5000, logical: 3))
        try cache.apply(remote: remote)
        #expect(cache.clock.last > remote.hlc)
        #expect(cache.lookup(testKey(1)) == .miss)
        let future = Tombstone(scope: .all, hlc: HLCTimestamp(wallMillis: clock.now + 3_600_000, logical: 0))
        let error = #expect(throws: AnswerCacheError.self) { try cache.apply(remote: future) }
        #expect(error?.isClock == true)
    }
}

@Suite struct ForeignAndCorruptFileTests {
    @Test func foreignSQLiteFileIsRefusedUntouched() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("foreign.sqlite")
        do {
            let db = try SQLiteDatabase(path: url.path)
            try db.execute("CREATE TABLE contacts(name TEXT); INSERT INTO contacts VALUES ('ada')")
        }
        let before = try fileBytes(url)
        let error = #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: url.path)) }
        #expect(error?.isForeignDatabase == true)
        #expect(error?.message.contains("untouched") == true)
        #expect(try fileBytes(url) == before)
        // Another application's id, even with no tables.
        let other = dir.file("other.sqlite")
        do { try SQLiteDatabase(path: other.path).execute("PRAGMA application_id = 1234") }
        let otherBefore = try fileBytes(other)
        let otherError = #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: other.path)) }
        #expect(otherError?.isForeignDatabase == true)
        #expect(try fileBytes(other) == otherBefore)
    }

    @Test func corruptFileIsRefusedUntouched() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("corrupt.sqlite")
        var noise = Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) })
        try noise.write(to: url)
        let error = #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: url.path)) }
        #expect(error?.isCorruptDatabase == true)
        #expect(try fileBytes(url) == noise)
        // A real cache file with its header torn.
        let torn = dir.file("torn.sqlite")
        do {
            let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: torn.path))
            cache.fill(testKey(1), answer: Answer(text: "x"))
            cache.close()
        }
        noise = try fileBytes(torn)
        noise.replaceSubrange(0..<16, with: Data(repeating: 0x41, count: 16))
        try noise.write(to: torn)
        try? FileManager.default.removeItem(atPath: torn.path + "-wal")
        try? FileManager.default.removeItem(atPath: torn.path + "-shm")
        let tornError = #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: torn.path)) }
        #expect(tornError?.isCorruptDatabase == true)
        #expect(try fileBytes(torn) == noise)
    }

    @Test func newerSchemaIsRefusedUntouched() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("newer.sqlite")
        do {
            let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: url.path))
            cache.close()
        }
        do { try SQLiteDatabase(path: url.path).execute("PRAGMA user_version = 99") }
        let before = try fileBytes(url)
        let error = #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: url.path)) }
        #expect(error?.isNewerSchema == true)
        #expect(try fileBytes(url) == before)
    }

    @Test func schemaIsVersionedAndMarked() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let url = dir.file("mine.sqlite")
        let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: url.path))
        cache.close()
        let db = try SQLiteDatabase(path: url.path)
        #expect(try db.scalarInt("PRAGMA application_id") == AnswerStore.applicationID)
        #expect(try db.scalarInt("PRAGMA user_version") == AnswerStore.schemaVersion)
        #expect(try db.scalarText("PRAGMA journal_mode") == "wal")
        #expect(throws: AnswerCacheError.self) { try AnswerCache(configuration: AnswerCache.Configuration(path: dir.file("x.db").path)) }
    }
}

@Suite struct ClockAcrossRestartTests {
    @Test func aWallClockThatWentBackwardsStillStampsLaterEventsGreater() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let clock = ManualClock()
        let configuration = makeConfiguration(dir, clock: clock)
        let stamped: HLCTimestamp
        do {
            let cache = try AnswerCache(configuration: configuration)
            guard case .queued(let hlc) = cache.fill(testKey(1), answer: Answer(text: "before")) else {
                Issue.record("not queued"); return
            }
            stamped = hlc
            cache.close()
        }
        clock.advance(0)
        let backwards = ManualClock(clock.now - 60_000)
        let cache = try AnswerCache(configuration: makeConfiguration(dir, clock: backwards))
        defer { cache.close() }
        #expect(cache.clock.last > stamped)
        // An invalidation after the restart still covers the entry written before it.
        try cache.invalidate(.key(testKey(1)))
        #expect(cache.lookup(testKey(1)) == .miss)
        #expect(try cache.storedKeys().isEmpty)
    }
}

@Suite struct StatsAndCheckTests {
    @Test func statsEncodeWithSnakeCaseKeys() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let cache = try AnswerCache(configuration: makeConfiguration(dir))
        cache.fill(testKey(1), answer: Answer(text: "x"))
        _ = cache.lookup(testKey(1))
        _ = cache.lookup(testKey(2))
        cache.close()
        let json = try JSONSerialization.jsonObject(with: JSONEncoder().encode(cache.stats())) as? [String: Any]
        for key in ["hits", "stale_hits", "misses", "fills", "fills_dropped", "flushes", "flush_latency_last_us",
                    "flush_latency_max_us", "flush_latency_avg_us", "queue_depth", "entries", "bytes", "invalidations_applied"] {
            #expect(json?[key] != nil, "missing \(key)")
        }
        #expect(json?["hits"] as? Int == 1)
        #expect(json?["misses"] as? Int == 1)
        #expect(json?["entries"] as? Int == 1)
    }

    @Test func checkReportsCountsAndRefusesForeignFiles() throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let configuration = makeConfiguration(dir)
        let cache = try AnswerCache(configuration: configuration)
        for i in 0..<10 { cache.fill(testKey(i), answer: Answer(text: "v\(i)")) }
        try cache.invalidate(.key(testKey(3)))
        cache.close()
        let report = try AnswerCache.check(path: configuration.path)
        #expect(report.ok && report.integrity == ["ok"])
        #expect(report.entries == 9 && report.tombstones == 1 && report.schemaVersion == Int(AnswerStore.schemaVersion))
        let foreign = dir.file("foreign.sqlite")
        do { try SQLiteDatabase(path: foreign.path).execute("CREATE TABLE t(x)") }
        let before = try fileBytes(foreign)
        #expect(throws: AnswerCacheError.self) { try AnswerCache.check(path: foreign.path) }
        #expect(try fileBytes(foreign) == before)
        #expect(throws: AnswerCacheError.self) { try AnswerCache.check(path: dir.file("absent.sqlite").path) }
    }
}

@Suite struct LargeBatchTests {
    @Test func largeBatchesAreEncodedInOrderAndRoundTrip() throws {
        // Several pipeline chunks, so chunks are encoded on another thread while earlier ones are written.
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let store = try AnswerStore(options: .init(path: dir.file("big.sqlite").path, diskBudgetBytes: 1 << 30,
                                                   compressionThreshold: 64, compressionLevel: 1, maxAnswerBytes: 2000))
        let count = AnswerStore.pipelineChunk * 4 + 1
        let fills = (0..<count).map { i in
            testEntry(i, hlc: UInt64(i + 1), text: i == 7 ? String(repeating: "o", count: 3000)
                                                       : String(repeating: "answer \(i) ", count: 1 + i % 40))
        }
        let report = try store.write(.init(fills: fills, touches: []))
        #expect(report.written == count - 1)
        #expect(report.refused == 1) // the oversized one
        for i in [0, 1, count / 2 - 1, count / 2, count - 1] {
            #expect(try store.read(testKey(i))?.answer == fills[i].answer)
        }
        #expect(try store.read(testKey(7)) == nil)
        // The written rows keep the batch order (rowids ascend with the sequence).
        let db = try SQLiteDatabase(path: dir.file("big.sqlite").path)
        #expect(try db.scalarInt("SELECT count(*) FROM entries a JOIN entries b ON a.id < b.id AND a.hlc > b.hlc") == 0)
    }
}
