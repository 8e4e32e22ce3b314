import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import PeerSync
import Testing

/// The README's advice for a site whose mosquitto is bridged to a central broker, run with its
/// exact `topic` lines on two real brokers: gateways on either side share invalidations, and a
/// request sent to the central broker is answered by a gateway on the site broker.
@Suite struct BridgedBrokerTests {
    static func bridge(to central: MosquittoBroker, fleet: String) -> String {
        """
        connection central
        address 127.0.0.1:\(central.port)
        bridge_protocol_version mqttv50
        cleansession false
        restart_timeout 1
        topic outpost/\(fleet)/cache/invalidate both 1
        topic outpost/\(fleet)/cache/watermark/+ both 1
        topic outpost/\(fleet)/req in 1
        topic outpost/\(fleet)/gw/+/req in 1
        topic outpost/\(fleet)/gw/+/status out 1
        topic outpost/\(fleet)/config in 1
        topic outpost/\(fleet)/gw/+/config in 1
        topic replies/# both 1
        """
    }

    @Test func aSiteBridgedToACentralBrokerSharesInvalidationsAndAnswersRequests() async throws {
        let central = try MosquittoBroker()
        let site = try MosquittoBroker(extraConfig: Self.bridge(to: central, fleet: "site"))
        let onSite = try TestGateway(id: "on-site", broker: site.url)
        let central1 = try TestGateway(id: "central-1", broker: central.url)
        try await onSite.start()
        try await central1.start()
        // The bridge is up once the site gateway's retained status has crossed it.
        let watcher = try await Requester(broker: central, subscribe: ["outpost/site/gw/on-site/status"])
        try await eventually("status across the bridge", timeout: 20) {
            !watcher.replies(on: "outpost/site/gw/on-site/status").isEmpty
        }

        // Site → central.
        let k1 = try InvalidationSyncTests.fill(central1, "price of tea", tags: ["prices"])
        _ = try onSite.invalidate(.tag("prices"))
        try await eventually("central gateway dropped the tag") { !InvalidationSyncTests.has(central1, k1) }
        // Central → site.
        let k2 = try InvalidationSyncTests.fill(onSite, "weather", tags: ["weather"])
        _ = try central1.invalidate(.tag("weather"))
        try await eventually("site gateway dropped the tag") { !InvalidationSyncTests.has(onSite, k2) }
        #expect(onSite.stat("gaps") == 0 && central1.stat("gaps") == 0)

        // A request addressed to the site gateway, sent to the central broker, answered back
        // through the bridge (v5 response topic and correlation data kept).
        let r = try await Requester(broker: central)
        try r.send("outpost/site/gw/on-site/req", Requester.chat("across the bridge"), correlation: [7, 7])
        try await eventually("answer across the bridge", timeout: 20) {
            r.finals().contains { Requester.content($0) == "echo: across the bridge" }
        }
        #expect(r.replies().contains { $0.correlationData == [7, 7] })
        await onSite.stop()
        await central1.stop()
    }
}
