import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// The PeerSync outbox kept in the cache's SQLite file.
@Suite struct InvalidationOutboxTests {
    @Test func appendPendingMarkPublishedAndSurviveReopening() throws {
        let dir = try TemporaryDirectory(prefix: "outpost-outbox")
        defer { dir.remove() }
        let path = dir.file("cache.sqlite").path
        var epoch = ""
        do {
            let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: path))
            let outbox = try InvalidationOutbox(cache: cache)
            #expect(try outbox.pending(limit: 10).isEmpty)
            #expect(try !outbox.hadSession())
            let t1 = try cache.invalidate(.tag("a"))
            let t2 = try cache.invalidate(.namespace("n"))
            let t3 = try cache.invalidate(.all)
            for t in [t1, t2, t3] { try outbox.append(t) }
            let pending = try outbox.pending(limit: 10)
            #expect(pending.map(\.tombstone) == [t1, t2, t3])
            #expect(pending.map(\.sequence) == pending.map(\.sequence).sorted())
            #expect(try outbox.pending(limit: 2).count == 2)
            try outbox.markPublished(through: pending[0].sequence)
            #expect(try outbox.pending(limit: 10).map(\.tombstone) == [t2, t3])
            try outbox.recordSession()
            epoch = try outbox.epoch()
            #expect(try outbox.epoch() == epoch)
            #expect(try outbox.peerPosition(origin: "gw-2") == nil)
            try outbox.recordPeerPosition(PeerPosition(epoch: "e", sequence: 7), origin: "gw-2")
            cache.close()
        }
        // A new process: what was not published is still there, and so is the session marker.
        let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: path))
        let outbox = try InvalidationOutbox(cache: cache)
        #expect(try outbox.pending(limit: 10).count == 2)
        #expect(try outbox.hadSession())
        #expect(try outbox.epoch() == epoch)
        #expect(try outbox.peerPosition(origin: "gw-2") == PeerPosition(epoch: "e", sequence: 7))
        #expect(try cache.integrityCheck() == ["ok"])
    }

    @Test func aFullOutboxCollapsesIntoOneInvalidationOfEverything() throws {
        let dir = try TemporaryDirectory(prefix: "outpost-outbox")
        defer { dir.remove() }
        let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: dir.file("cache.sqlite").path))
        let outbox = try InvalidationOutbox(cache: cache, capacity: 3)
        var last: Tombstone?
        for i in 0..<5 {
            let t = try cache.invalidate(.tag("t\(i)"))
            try outbox.append(t)
            last = t
        }
        let pending = try outbox.pending(limit: 10).map(\.tombstone)
        #expect(pending.count <= 3)
        #expect(pending.contains { $0.scope == .all })  // sound: peers drop more, never less
        #expect(pending.last == last)
        #expect(throws: AnswerCacheError.self) { try InvalidationOutbox(cache: cache, capacity: 1) }
    }

    @Test func aLocalInvalidationAndItsOutboxRecordAreCommittedTogether() throws {
        let dir = try TemporaryDirectory(prefix: "outpost-outbox")
        defer { dir.remove() }
        let path = dir.file("cache.sqlite").path
        let cache = try AnswerCache(configuration: AnswerCache.Configuration(path: path))
        let outbox = try InvalidationOutbox(cache: cache, capacity: 2)
        let key = CacheKey.derive(modelFingerprint: "m", chatTemplate: "chatml",
                                  messages: [ChatMessage(role: "user", content: "q")],
                                  sampling: SamplingParameters(), namespace: "default")
        cache.fill(key, answer: Answer(text: "a"), tags: ["x"])
        cache.flush()
        let t1 = try cache.invalidate(.tag("x"), recordingIn: outbox)
        #expect(try outbox.pending(limit: 10).map(\.tombstone) == [t1])
        #expect(cache.lookup(key) == .miss)
        // The writer's transaction honours the outbox's capacity like `append` does.
        let t2 = try cache.invalidate(.namespace("n"), recordingIn: outbox)
        let t3 = try cache.invalidate(.tag("y"), recordingIn: outbox)
        let pending = try outbox.pending(limit: 10).map(\.tombstone)
        #expect(pending.count == 2 && pending.first?.scope == .all && pending.last == t3)
        #expect(pending.first?.hlc == t2.hlc)
        // Without an outbox nothing is recorded.
        _ = try cache.invalidate(.tag("z"))
        #expect(try outbox.pending(limit: 10).count == 2)
        cache.close()
        // Both survive reopening, from one file.
        let reopened = try AnswerCache(configuration: AnswerCache.Configuration(path: path))
        #expect(try InvalidationOutbox(cache: reopened).pending(limit: 10).map(\.tombstone) == pending)
        #expect(reopened.lookup(key) == .miss)
        #expect(try reopened.integrityCheck() == ["ok"])
    }
}
