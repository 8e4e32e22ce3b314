import Testing
@testable import PeerSync
@testable import MQTT
@testable import MQTTDoor

/// The plain values behind issue 17's MQTT fixes, step by step without I/O: where replies may go,
/// what counts as a redelivery, how notices are rate-limited, the connected-time clock.
@Suite struct ReplyPolicyTests {
    static let policy = ReplyTopicPolicy(root: "outpost/site")

    @Test(arguments: [
        // The fleet's own root: every topic in it, control or not.
        ("outpost/site/config", ReplyTopicPolicy.Refusal.fleetTopic),
        ("outpost/site/gw/gw1/config", .fleetTopic),
        ("outpost/site/cache/invalidate", .fleetTopic),
        ("outpost/site/gw/gw1/status", .fleetTopic),
        ("outpost/site/cache/watermark/gw1", .fleetTopic),
        ("outpost/site/cache/watermark/gw9", .fleetTopic),
        ("outpost/site/req", .fleetTopic),
        ("outpost/site/gw/gw1/req", .fleetTopic),
        ("outpost/site", .fleetTopic),
        ("outpost/site/replies/me", .fleetTopic),
        // Another fleet's (or a former root's) control topics, by their shape.
        ("outpost/other/config", .controlTopic),
        ("outpost/other/gw/x/config", .controlTopic),
        ("fleets/b/gw/x/status", .controlTopic),
        ("fleets/b/cache/invalidate", .controlTopic),
        ("fleets/b/cache/watermark/x", .controlTopic),
        ("fleets/b/req", .controlTopic),
        ("fleets/b/gw/x/req", .controlTopic),
        // Not topic names, or the broker's own.
        ("", .empty),
        ("replies/+", .wildcard),
        ("replies/#", .wildcard),
        ("#", .wildcard),
        ("$SYS/broker/clients", .system),
        ("$share/g/replies/x", .system),
        ("replies/a\u{0}b", .malformed),
        ("replies/a\u{1}b", .malformed),
        ("replies/a\u{85}b", .malformed),
        (String(repeating: "r", count: ReplyTopicPolicy.maxBytes + 1), .oversized),
    ])
    func refused(topic: String, why: ReplyTopicPolicy.Refusal) {
        #expect(Self.policy.check(topic) == why, "\(topic.prefix(40))")
    }

    @Test(arguments: [
        "replies/me", "replies/12345", "bench/replies/7", "outpost/sitex/replies", "outpost/site-b/replies/x",
        "app/replies/q1", "replies/configuration", "replies/status/x", "replies/é/ü", "a",
        String(repeating: "r", count: ReplyTopicPolicy.maxBytes),
    ])
    func allowed(topic: String) {
        #expect(Self.policy.check(topic) == nil, "\(topic.prefix(40))")
    }

    @Test func aPolicyFollowsAConfiguredRoot() throws {
        let topics = try FleetTopics(fleet: "f", gateway: "g", root: "fleets/b")
        let policy = ReplyTopicPolicy(topics: topics)
        for t in [topics.fleetConfig, topics.gatewayConfig, topics.invalidations, topics.status, topics.watermark,
                  topics.fleetRequests, topics.gatewayRequests] {
            #expect(policy.check(t) == .fleetTopic, "\(t)")
        }
        #expect(policy.check("fleets/b2/x") == nil)
        // The default root's control topics are still refused (a gateway that moved from there).
        #expect(policy.check("outpost/f/config") == .controlTopic)
    }

    static func identity(_ topic: String, _ corr: [UInt8], _ payload: [UInt8]) -> RedeliveryFilter.Identity {
        RedeliveryFilter.Identity(replyTopic: topic, correlation: corr, payloadDigest: payload)
    }

    @Test func theRedeliveryFilterKeysOnPayloadTooAndForgetsAfterItsWindow() {
        let s: UInt64 = 1_000_000_000
        var f = RedeliveryFilter(windowNanos: 30 * s, capacity: 100)
        func admit(_ id: RedeliveryFilter.Identity, _ now: UInt64) -> Bool { f.admit(id, now: now) }
        let q1 = Self.identity("replies/me", [1], [0xA1])
        let q2 = Self.identity("replies/me", [1], [0xA2])  // same correlation, another question
        #expect(admit(q1, 0))
        #expect(admit(q2, 1 * s))
        #expect(!admit(q1, 2 * s))  // a redelivery
        #expect(!admit(q2, 29 * s))
        #expect(admit(q1, 30 * s))  // the window is over: asked again
        #expect(!admit(q1, 31 * s))
        #expect(admit(q2, 31 * s))
        // A removed identity is new again, and its older admission does not forget the newer one.
        f.remove(q2)
        #expect(admit(q2, 32 * s))
        #expect(!admit(q2, 61 * s))
        #expect(admit(q2, 62 * s))
    }

    @Test func theRedeliveryFilterIsBoundedOldestFirst() {
        var f = RedeliveryFilter(windowNanos: .max, capacity: 3)
        func admit(_ id: RedeliveryFilter.Identity, _ now: UInt64) -> Bool { f.admit(id, now: now) }
        for i in 0..<5 { #expect(admit(Self.identity("t", [UInt8(i)], []), UInt64(i))) }
        #expect(f.count == 3)
        #expect(admit(Self.identity("t", [0], []), 10))  // forgotten: counted as new
        #expect(!admit(Self.identity("t", [4], []), 11))
        // Many more than the capacity: the size stays bounded.
        for i in 0..<10_000 { _ = f.admit(Self.identity("u", Array("\(i)".utf8), []), now: UInt64(20 + i)) }
        #expect(f.count == 3)
    }

    @Test func theRedeliveryClockStandsStillWhileDisconnected() {
        var link = PeerSync.Core.Link()
        #expect(link.connectedClock(now: 5) == 0)
        link.connectedSince = 10
        #expect(link.connectedClock(now: 15) == 5)
        // Down at 20 for a long outage: the clock keeps the 10 connected units.
        link.connectedBefore = 10
        link.connectedSince = nil
        #expect(link.connectedClock(now: 1_000_000) == 10)
        link.connectedSince = 1_000_000
        #expect(link.connectedClock(now: 1_000_002) == 12)
    }

    @Test func theRateLimiterLetsABurstThroughThenCountsWhatItHeldBack() {
        var l = LogRateLimiter(burst: 2, intervalNanos: 100)
        func admit(_ kind: String, _ now: UInt64) -> Int? { l.admit(kind, now: now) }
        #expect(admit("a", 0) == 0)
        #expect(admit("a", 1) == 0)
        #expect(admit("a", 2) == nil)
        #expect(admit("a", 3) == nil)
        #expect(admit("b", 3) == 0)  // kinds are apart
        #expect(admit("a", 100) == 2)  // a new interval: the first line says 2 were held back
        #expect(admit("a", 101) == 0)
        #expect(admit("a", 102) == nil)
    }

    @Test func counterNamesAreDistinctAndKeepTheirOldSpelling() {
        var all: [PeerSync.Counter] = [
            .request(.requests), .request(.replies), .request(.requestsRefused), .request(.requestsUnanswerable),
            .request(.requestsDuplicate), .request(.requestsBusy), .request(.requestsFailed),
            .request(.errorReplies), .publishErrors, .connects, .connectFailures, .connectionLosses, .sessionLosses, .gaps,
            .configsReceived, .messagesIgnored, .invalidationsApplied, .invalidationsRejected, .invalidationsOwn,
            .invalidationsDuplicate, .invalidationsPublished, .invalidationErrors, .watermarksRejected, .statusPublished,
            .subscribeErrors, .logErrors,
        ]
        all += ReplyTopicPolicy.Refusal.allCases.map { .request(.replyTopicRefused($0)) }
        all += PeerSync.Counter.RequestExpiry.allCases.map { .requestExpired($0) }
        let names = all.map(\.name)
        #expect(Set(names).count == names.count)
        #expect(names.allSatisfy { $0.allSatisfy { $0.isLowercase || $0 == "_" } })
        // The names dashboards and tests already use.
        for old in ["requests_duplicate", "requests_unanswerable", "invalidations_applied", "session_losses", "gaps",
                    "watermarks_rejected", "connect_failures", "configs_received", "messages_ignored"] {
            #expect(names.contains(old), "\(old)")
        }
        #expect(PeerSync.Counter.request(.replyTopicRefused(.fleetTopic)).name == "reply_topics_refused_fleet_topic")
        #expect(PeerSync.Counter.requestExpired(.whileAnswering).name == "requests_expired_while_answering")
    }

    @Test func logTextIsBoundedAndPrintable() {
        #expect(PeerSync.Core.printable("a\u{1}b\nc") == "a?b?c")
        let long = PeerSync.Core.printable(String(repeating: "x", count: 1000))
        #expect(long.unicodeScalars.count == 257 && long.hasSuffix("…"))
    }
}
