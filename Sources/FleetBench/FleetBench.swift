// FleetBench: N gateways (PeerSync + AnswerCache each, in this process) on one broker.
// Prints, as JSON: the MQTT cache-hit round trip (request published → final reply received, v5,
// QoS 1) and the time until an invalidation made on one gateway is durable and applied at every
// other gateway, as p50/p99/max in milliseconds. Run through scripts/bench-fleet.sh.
import AnswerCache
import Dispatch
import Foundation
import OutpostCore
import PeerSync
import Synchronization
import MQTT
import MQTTDoor

struct Options {
    var broker = "mqtt://127.0.0.1:1883"
    var gateways = 3
    var requests = 2000
    var invalidations = 300
    var fleet = "bench"
    /// Gateways sign their invalidations and verify their peers' (member keys listed for all).
    var signed = false

    static func parse(_ args: [String]) -> Options {
        var o = Options()
        var i = 0
        func value() -> String {
            i += 1
            guard i < args.count else { fail("missing value after \(args[i - 1])") }
            return args[i]
        }
        while i < args.count {
            switch args[i] {
            case "--broker": o.broker = value()
            case "--gateways": o.gateways = Int(value()) ?? 0
            case "--requests": o.requests = Int(value()) ?? 0
            case "--invalidations": o.invalidations = Int(value()) ?? 0
            case "--fleet": o.fleet = value()
            case "--signed": o.signed = true
            default: fail("unknown argument \(args[i]); usage: FleetBench --broker URL [--gateways N] [--requests R] [--invalidations I] [--signed]")
            }
            i += 1
        }
        guard o.gateways >= 2, o.requests > 0, o.invalidations > 0 else { fail("need at least 2 gateways, 1 request, 1 invalidation") }
        return o
    }
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("FleetBench: \(message)\n".utf8))
    exit(1)
}

func nowNanos() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

func summary(_ samplesNanos: [UInt64]) -> [String: Double] {
    let s = samplesNanos.sorted()
    func pct(_ p: Double) -> Double {
        let index = max(0, min(s.count - 1, Int((p * Double(s.count)).rounded(.up)) - 1))
        return Double(s[index]) / 1e6
    }
    return ["p50": pct(0.50), "p99": pct(0.99), "max": Double(s.last ?? 0) / 1e6, "samples": Double(s.count)]
}

/// Records when each peer has applied an invalidation (by its clock reading).
final class Arrivals: Sendable {
    let seen = Mutex<[UInt64: (count: Int, lastNanos: UInt64)]>([:])
    func record(_ t: Tombstone) {
        let now = nowNanos()
        seen.withLock { $0[t.hlc.rawValue, default: (0, 0)] = ($0[t.hlc.rawValue, default: (0, 0)].count + 1, now) }
    }
}

struct Gateway {
    let id: String
    let cache: AnswerCache
    let outbox: InvalidationOutbox
    let peer: PeerSync
    let task: Task<Void, any Error>
}

@main
enum FleetBench {
    static func main() async throws {
        let options = Options.parse(Array(CommandLine.arguments.dropFirst()))
        let broker: BrokerURL
        do { broker = try BrokerURL(options.broker) } catch { fail("\(error)") }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("outpost-fleet-bench-\(getpid())")
        try? FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }

        let arrivals = Arrivals()
        var gateways: [Gateway] = []
        // With --signed, every gateway has a member key and lists every other's (as a signed fleet config would).
        let identities = (0..<options.gateways).map { MemberIdentity(gateway: "gw\($0)", privateKey: Ed25519.PrivateKey()) }
        let members = Dictionary(uniqueKeysWithValues: identities.map { ($0.gateway, $0.publicKey) })
        for i in 0..<options.gateways {
            let id = "gw\(i)"
            var config = AnswerCache.Configuration(path: root.appendingPathComponent("\(id).sqlite").path)
            // Peers' applied tombstones: the origin's own invalidation is stamped locally, not received.
            config.onDurable = { event in if case .invalidated(let t) = event { arrivals.record(t) } }
            do {
                let cache = try AnswerCache(configuration: config)
                let outbox = try InvalidationOutbox(cache: cache)
                var pc = PeerSync.Configuration(broker: broker, fleet: options.fleet, gatewayID: id)
                pc.statusIntervalSeconds = 30
                // The request door on this gateway's connection, as the agent wires it.
                pc.requests = try MQTTRequestDoor.factory(MQTTRequestDoor.Configuration())
                if options.signed {
                    pc.identity = identities[i]
                    pc.membership = Membership(fleetKeys: [:], members: members)
                }
                let peer = try PeerSync(configuration: pc, service: CacheOnlyService(cache: cache, gateway: id), target: cache, log: outbox)
                let task = Task { try await peer.run() }
                gateways.append(Gateway(id: id, cache: cache, outbox: outbox, peer: peer, task: task))
            } catch {
                fail("gateway \(id): \(error)")
            }
        }

        let deadline = Date().addingTimeInterval(20)
        while gateways.contains(where: { $0.peer.brokerState != "connected" }) {
            if Date() > deadline { fail("gateways did not connect to \(broker) within 20 s") }
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(300))  // subscriptions in place

        // MARK: Cache-hit round trip

        let requester = try MosquittoClient(clientID: "fleet-bench-requester-\(getpid())", cleanStart: true)
        try requester.setTCPNoDelay()
        try requester.startLoop()
        try requester.connect(host: broker.host, port: broker.port)
        var events = requester.events.makeAsyncIterator()
        while let e = await events.next(isolation: #isolation) { if case .connected = e { break } }
        let replyTopic = "bench/replies/\(getpid())"
        try requester.subscribe(replyTopic, qos: 1)
        while let e = await events.next(isolation: #isolation) { if case .subscribed = e { break } }

        func ask(gateway: String, correlation: UInt32) async throws -> (nanos: UInt64, cached: Bool) {
            let body = #"{"messages":[{"role":"user","content":"what is the opening time of the depot?"}]}"#
            let corr = withUnsafeBytes(of: correlation.bigEndian) { Array($0) }
            let start = nowNanos()
            try requester.publish(MQTTMessage(topic: "outpost/\(options.fleet)/gw/\(gateway)/req", payload: Array(body.utf8), qos: 1,
                                              responseTopic: replyTopic, correlationData: corr))
            while let e = await events.next(isolation: #isolation) {
                guard case .message(let m) = e, m.correlationData == corr else { continue }
                let elapsed = nowNanos() - start
                let text = String(decoding: m.payload, as: UTF8.self)
                guard text.contains("\"done\":true") else { continue }
                return (elapsed, text.contains("\"cached\":true"))
            }
            fail("the requester's event stream ended")
        }

        for g in gateways { _ = try await ask(gateway: g.id, correlation: 0) }  // fill each gateway's cache
        var hitSamples: [UInt64] = []
        var misses = 0
        for i in 0..<options.requests {
            let r = try await ask(gateway: gateways[i % gateways.count].id, correlation: UInt32(i + 1))
            if r.cached { hitSamples.append(r.nanos) } else { misses += 1 }
        }

        // MARK: Invalidation visible everywhere

        var visibleSamples: [UInt64] = []
        var timeouts = 0
        for k in 0..<options.invalidations {
            let origin = gateways[k % gateways.count]
            let start = nowNanos()
            let tombstone = try origin.cache.invalidate(.tag("bench-\(k)"))
            try origin.peer.announce(tombstone)
            let peers = gateways.count - 1
            let limit = start + 5_000_000_000
            var done: UInt64?
            while nowNanos() < limit {
                // The origin's own durable event counts once; every peer adds one more.
                if let seen = arrivals.seen.withLock({ $0[tombstone.hlc.rawValue] }), seen.count >= peers + 1 {
                    done = seen.lastNanos
                    break
                }
                try await Task.sleep(for: .microseconds(100))
            }
            if let done { visibleSamples.append(done - start) } else { timeouts += 1 }
        }

        let result: [String: Any] = [
            "broker": broker.description,
            "gateways": options.gateways,
            "cache_hit_round_trip_ms": summary(hitSamples),
            "cache_hit_misses": misses,
            "invalidation_visible_everywhere_ms": summary(visibleSamples),
            "invalidation_timeouts": timeouts,
            "signed": options.signed,
            "invalidations_refused": gateways.reduce(0) { $0 + ($1.peer.statistics()["invalidations_refused"] ?? 0) },
            "invalidations_applied": gateways.reduce(0) { $0 + ($1.peer.statistics()["invalidations_applied"] ?? 0) },
        ]
        let json = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys, .prettyPrinted])
        print(String(decoding: json, as: UTF8.self))

        for g in gateways { g.task.cancel() }
        for g in gateways { _ = try? await g.task.value }
        try? requester.disconnect()
        requester.stopLoop()
        for g in gateways { g.cache.close() }
    }
}
