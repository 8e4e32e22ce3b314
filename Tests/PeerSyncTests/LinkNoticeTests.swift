import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Testing
@testable import MQTT
@testable import PeerSync

/// What the agent logs about its broker link (issue 17, item 8), as PeerSync's notices: a dropped
/// connection, the reconnect, the resubscription, a lost session and the cache it costs, each once
/// and with its counts.
@Suite(.serialized) struct LinkNoticeTests {
    /// The cache as the agent hands it over: it can say how many entries a drop costs.
    struct CountingCache: CountingInvalidationTarget {
        let cache: AnswerCache
        func apply(remote tombstone: Tombstone) throws { try cache.apply(remote: tombstone) }
        func invalidate(_ scope: InvalidationScope) throws -> Tombstone { try cache.invalidate(scope) }
        func entryCount() -> Int? { cache.stats().entries }
    }

    @Test func aCutConnectionThenABrokerThatForgotTheSessionAreEachToldOnce() async throws {
        let broker = try MosquittoBroker()
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        let peer = try PeerSync(configuration: gw.configuration, service: gw.service, target: CountingCache(cache: gw.cache),
                                log: gw.outbox)
        let log = NoticeLog(peer)
        let task = Task { try await peer.run() }
        try await eventually("subscribed") { log.all().contains(.subscribed(topics: 4, refused: 0, reconnect: false)) }

        // Something in the cache, on disk.
        let r = try await Requester(broker: broker)
        for i in 0..<3 { try r.send("outpost/site/req", Requester.chat("question \(i)"), correlation: [UInt8(i)]) }
        try await eventually("answered") { r.finals().count == 3 }
        gw.cache.flush()
        #expect(gw.cache.stats().entries == 3)

        // 1. The TCP connection cut under the client: lost, back with the session, resubscribed.
        #expect(shutdown(peer.connection.client.socketDescriptor, Int32(SHUT_RDWR)) == 0)
        try await eventually("back") { log.all().contains { if case .reconnected = $0 { true } else { false } } }
        try await eventually("resubscribed") { log.all().contains(.subscribed(topics: 4, refused: 0, reconnect: true)) }
        var notices = log.all()
        #expect(notices.contains { if case .connectionLost(_, 1, _) = $0 { true } else { false } }, "\(notices)")
        #expect(notices.contains { if case .reconnected(_, _, true, 2) = $0 { true } else { false } }, "\(notices)")
        #expect(!notices.contains { if case .sessionLost = $0 { true } else { false } })
        #expect(gw.cache.stats().entries == 3)

        // 2. The broker killed and restarted without persistence: the session is gone, and with it
        //    the proof that no invalidation was missed, so the cache goes, with a count.
        broker.kill()
        try await eventually("lost again") { log.all().contains { if case .connectionLost(_, 2, _) = $0 { true } else { false } } }
        try broker.start()
        try await eventually("session loss told", timeout: 20) {
            log.all().contains(.cacheDropped(reason: .sessionLost, entries: 3, drops: 1))
        }
        try await eventually("resubscribed again") {
            log.all().filter { $0 == .subscribed(topics: 4, refused: 0, reconnect: true) }.count == 2
        }
        notices = log.all()
        #expect(notices.contains(.sessionLost(losses: 1)), "\(notices)")
        #expect(notices.contains { if case .reconnected(_, _, false, 3) = $0 { true } else { false } }, "\(notices)")
        #expect(notices.filter { if case .connectionLost = $0 { true } else { false } }.count == 2)
        #expect(notices.filter { if case .cacheDropped = $0 { true } else { false } }.count == 1)
        #expect(peer.count(of: .connectionLosses) == 2 && peer.count(of: .sessionLosses) == 1)
        #expect(gw.cache.stats().entries == 0)
        // The order an operator reads: lost, reconnected, session lost and cache dropped, resubscribed.
        let lastLoss = try #require(notices.lastIndex { if case .connectionLost = $0 { true } else { false } })
        let back = try #require(notices.lastIndex { if case .reconnected = $0 { true } else { false } })
        let dropped = try #require(notices.firstIndex { if case .cacheDropped = $0 { true } else { false } })
        #expect(lastLoss < back && back < dropped)
        task.cancel()
        _ = try? await task.value
    }
}
