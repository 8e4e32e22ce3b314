import Foundation
import OutpostCore
import OutpostTesting
import Synchronization
import Testing
@testable import PeerSync
@testable import MQTT

/// The config topics against a real `mosquitto`: each message handed to `onConfig` with its source
/// and whether it came from the retained store, oversized ones without their bytes, nothing when no
/// handler is set, and the status carrying the reported `config` object.
@Suite(.serialized) struct ConfigTopicTests {
    @Test func configMessagesReachTheHandlerWithSourceAndRetainedFlag() async throws {
        let broker = try MosquittoBroker()
        let r = try await Requester(broker: broker, subscribe: ["outpost/site/gw/+/status"])
        // Retained before the gateway subscribes: delivered from the retained store.
        try r.client.publish(MQTTMessage(topic: "outpost/site/config", payload: Array("fleet-1".utf8), qos: 1, retain: true))
        try await Task.sleep(for: .milliseconds(100))
        let received = Mutex<[ConfigDelivery]>([])
        let gw = try TestGateway(id: "gw1", broker: broker.url) { c in
            c.onConfig = { d in received.withLock { $0.append(d) } }
            c.maxConfigBytes = 1024
        }
        try await gw.start()
        try await eventually("the retained fleet config") { received.withLock { $0.count } == 1 }
        #expect(received.withLock { $0[0] } == ConfigDelivery(source: .fleet, topic: "outpost/site/config",
                                                               payload: Array("fleet-1".utf8), byteCount: 7, retained: true))

        // New publications: not retained on delivery, even when published retained.
        try r.client.publish(MQTTMessage(topic: "outpost/site/gw/gw1/config", payload: Array("gw-1".utf8), qos: 1, retain: true))
        try r.client.publish(MQTTMessage(topic: "outpost/site/gw/gw2/config", payload: Array("not ours".utf8), qos: 1))
        try r.client.publish(MQTTMessage(topic: "outpost/site/config", payload: [UInt8](repeating: 65, count: 5000), qos: 1))
        try await eventually("the gateway config and the oversized one") { received.withLock { $0.count } == 3 }
        let (gateway, big) = received.withLock { ($0[1], $0[2]) }
        #expect(gateway == ConfigDelivery(source: .gateway, topic: "outpost/site/gw/gw1/config", payload: Array("gw-1".utf8),
                                          byteCount: 4, retained: false))
        #expect(big.isOversized && big.payload.isEmpty && big.byteCount == 5000)

        // The reported outcome is on the retained status at once.
        await gw.peer?.reportConfig(.object(["version": .number(3), "state": .string("applied")]))
        try await eventually("status with the config") {
            r.replies(on: "outpost/site/gw/gw1/status").contains {
                ((Requester.json($0.payload)?["config"] as? [String: Any])?["version"] as? Int) == 3
            }
        }
        #expect(gw.stat("configs_received") == 3)
        #expect(received.withLock { $0.count } == 3)  // gw2's config never reached gw1
        await gw.stop()
    }

    @Test func withoutAHandlerTheConfigTopicsAreNotSubscribed() async throws {
        let broker = try MosquittoBroker()
        let r = try await Requester(broker: broker)
        let gw = try TestGateway(id: "gw1", broker: broker.url)
        try await gw.start()
        try r.client.publish(MQTTMessage(topic: "outpost/site/config", payload: Array("x".utf8), qos: 1))
        // A request after it: once its reply is back, the config would have been seen too.
        try r.send("outpost/site/gw/gw1/req", Requester.chat("after"), correlation: [1])
        try await eventually("reply") { r.finals().count == 1 }
        #expect(gw.stat("configs_received") == 0)
        #expect(gw.stat("messages_ignored") == 0)
        await gw.stop()
    }
}
