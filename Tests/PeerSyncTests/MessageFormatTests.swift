import Foundation
import OutpostCore
import Testing
@testable import PeerSync
@testable import MQTT

@Suite struct MessageFormatTests {
    @Test func brokerURLs() throws {
        #expect(try BrokerURL("mqtt://127.0.0.1") == BrokerURL(host: "127.0.0.1", port: 1883, tls: false))
        #expect(try BrokerURL("mqtts://broker.example:9883/") == BrokerURL(host: "broker.example", port: 9883, tls: true))
        #expect(try BrokerURL("mqtts://broker.example").port == 8883)
        #expect(try BrokerURL("mqtt://[::1]:1884") == BrokerURL(host: "::1", port: 1884, tls: false))
        #expect(try BrokerURL("mqtt://[::1]:1884").description == "mqtt://[::1]:1884")
        for bad in ["http://x", "mqtt://", "mqtt://h:0", "mqtt://h:99999", "mqtt://h:x", "mqtt://u:p@h", "mqtt://h/path", "mqtt://[::1"] {
            let e = try #require(throws: MQTTError.self, "\(bad)") { try BrokerURL(bad) }
            #expect(e.isInvalidURL)
        }
    }

    @Test func topicNames() throws {
        let t = try FleetTopics(fleet: "site-a", gateway: "gw1")
        #expect(t.sharedFleetRequests == "$share/site-a/outpost/site-a/req")
        #expect(t.gatewayRequests == "outpost/site-a/gw/gw1/req")
        #expect(t.invalidations == "outpost/site-a/cache/invalidate")
        #expect(t.status == "outpost/site-a/gw/gw1/status")
        for bad in ["", "a/b", "a+", "#", "$x"] {
            #expect(throws: PeerSyncError.self) { try FleetTopics(fleet: bad, gateway: "g") }
            #expect(throws: PeerSyncError.self) { try FleetTopics(fleet: "f", gateway: bad) }
        }
    }

    @Test func invalidationRoundTripsEveryScope() throws {
        let key = try CacheKey(hex: String(repeating: "ab", count: 32))
        for scope in [InvalidationScope.key(key), .tag("prices"), .namespace("n/s"), .all] {
            let m = InvalidationMessage(origin: "gw-1", tombstone: Tombstone(scope: scope, hlc: HLCTimestamp(wallMillis: 1_732_530_000_123, logical: 4)))
            let decoded = try InvalidationMessage(payload: m.encoded())
            #expect(decoded == m)
        }
        let text = String(decoding: InvalidationMessage(origin: "g", tombstone: Tombstone(scope: .tag("t"), hlc: HLCTimestamp(wallMillis: 5, logical: 1))).encoded(), as: UTF8.self)
        #expect(text == #"{"hlc":"5.1","origin":"g","scope":{"tag":"t"}}"#)
    }

    @Test func numberedInvalidationsAndWatermarksRoundTrip() throws {
        let p = PeerPosition(epoch: "0f3c-e", sequence: 42)
        let m = InvalidationMessage(origin: "g", tombstone: Tombstone(scope: .all, hlc: HLCTimestamp(wallMillis: 9, logical: 0)), position: p)
        #expect(try InvalidationMessage(payload: m.encoded()) == m)
        let w = WatermarkMessage(origin: "g", position: p)
        #expect(try WatermarkMessage(payload: w.encoded()) == w)
        for bad in [#"{"origin":"g","epoch":"e"}"#, #"{"origin":"g","seq":1}"#, #"{"origin":"g","epoch":"e","seq":0}"#,
                    #"{"origin":"g","epoch":"e","seq":1.5}"#, #"{"origin":"g","epoch":"a b","seq":1}"#, #"{"origin":"g","epoch":5,"seq":1}"#] {
            #expect(throws: QueryError.self, "\(bad)") { try WatermarkMessage(payload: Array(bad.utf8)) }
        }
        let topics = try FleetTopics(fleet: "f", gateway: "g")
        #expect(topics.isWatermark("outpost/f/cache/watermark/x"))
        #expect(!topics.isWatermark("outpost/f/cache/watermark/x/y"))
        #expect(!topics.isWatermark("outpost/f/cache/invalidate"))
    }

    @Test(arguments: [
        "", "null", "[]", "{}", #"{"origin":"g"}"#,
        #"{"origin":"g","hlc":"5.1"}"#,
        #"{"origin":1,"hlc":"5.1","scope":{"all":true}}"#,
        #"{"origin":"a/b","hlc":"5.1","scope":{"all":true}}"#,
        #"{"origin":"g","hlc":5,"scope":{"all":true}}"#,
        #"{"origin":"g","hlc":"0.0","scope":{"all":true}}"#,
        #"{"origin":"g","hlc":"x","scope":{"all":true}}"#,
        #"{"origin":"g","hlc":"5.1","scope":{"all":false}}"#,
        #"{"origin":"g","hlc":"5.1","scope":{"tag":""}}"#,
        #"{"origin":"g","hlc":"5.1","scope":{"tag":1}}"#,
        #"{"origin":"g","hlc":"5.1","scope":{"key":"abc"}}"#,
        #"{"origin":"g","hlc":"5.1","scope":{"tag":"a","namespace":"b"}}"#,
        #"{"origin":"g","hlc":"5.1","scope":"all"}"#,
    ])
    func malformedInvalidationsAreRefused(payload: String) {
        #expect(throws: QueryError.self) { try InvalidationMessage(payload: Array(payload.utf8)) }
    }

    @Test func recentSetForgetsTheOldest() {
        var s = RecentSet<Int>(capacity: 3)
        let firsts = [s.insert(1), s.insert(2), s.insert(3)]
        #expect(firsts == [true, true, true])
        let again = s.insert(2)
        #expect(!again)
        let fourth = s.insert(4)  // forgets 1
        #expect(fourth)
        #expect(!s.contains(1) && s.contains(4) && s.count == 3)
        #expect(s.orderedMembers == [2, 3, 4])
        #expect(s.removing(3).orderedMembers == [2, 4])
    }
}
