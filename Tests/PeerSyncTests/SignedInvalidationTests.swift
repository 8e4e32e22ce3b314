import AnswerCache
import Foundation
import OutpostCore
import OutpostTesting
import Testing
@testable import PeerSync
@testable import MQTT

/// Issue 17, attacks 1 and 2: invalidations and watermarks authenticated end to end, on a real
/// `mosquitto`. Gateways sign with their member keys; receivers admit keys listed by the (signed)
/// fleet config or certified by a trusted fleet key, and operators sign with the fleet key. Every
/// forgery below is published by a plain client, as an attacker on the broker would, and must
/// leave the cache, the sequence state and the dedup set as they were.
@Suite(.serialized) struct SignedInvalidationTests {
    static let fleet = "site"
    static let topic = "outpost/site/cache/invalidate"
    let fleetKey = Ed25519.PrivateKey()

    /// A gateway with its own member key that trusts `fleetKey` (as "ops") and lists `members`.
    func gateway(_ id: String, broker: MosquittoBroker, members: [String: Ed25519.PublicKey] = [:],
                 certified: Bool = false) throws -> (TestGateway, MemberIdentity) {
        let key = Ed25519.PrivateKey()
        let cert = certified
            ? try MemberCertificate.issue(fleet: Self.fleet, gateway: id, publicKey: key.publicKey, keyID: "ops", signer: fleetKey)
            : nil
        let identity = MemberIdentity(gateway: id, privateKey: key, certificate: cert)
        let membership = Membership(fleetKeys: ["ops": fleetKey.publicKey], members: members)
        let gw = try TestGateway(id: id, broker: broker.url, fleet: Self.fleet) { c in
            c.identity = identity
            c.membership = membership
        }
        return (gw, identity)
    }

    static func fill(_ gw: TestGateway, _ text: String, tags: [String] = []) throws -> CacheKey {
        try InvalidationSyncTests.fill(gw, text, tags: tags)
    }

    static func has(_ gw: TestGateway, _ key: CacheKey) -> Bool { InvalidationSyncTests.has(gw, key) }

    static func refused(_ gw: TestGateway) -> Int { gw.stat("invalidations_refused") + gw.stat("watermarks_refused") }

    @Test func forgedInvalidationsAndWatermarksChangeNothing() async throws {
        let broker = try MosquittoBroker()
        let aKey = Ed25519.PrivateKey()
        let aIdentity = MemberIdentity(gateway: "a", privateKey: aKey)
        // b lists a; a lists b (the signed fleet config's `members`, as the agent passes it).
        let (b, bIdentity) = try gateway("b", broker: broker, members: ["a": aKey.publicKey])
        let a = try TestGateway(id: "a", broker: broker.url, fleet: Self.fleet) { c in
            c.identity = aIdentity
            c.membership = Membership(fleetKeys: ["ops": fleetKey.publicKey], members: ["b": bIdentity.publicKey])
        }
        try await a.start()
        try await b.start()
        let prices = try Self.fill(b, "price of tea", tags: ["prices"])
        let news = try Self.fill(b, "news", tags: ["news"])
        let weather = try Self.fill(b, "weather", tags: ["weather"])

        // A genuine invalidation from a is applied, and fixes a's position at b.
        try a.invalidate(.tag("prices"))
        try await eventually("b applied a's invalidation") { !Self.has(b, prices) }
        let epoch = try a.outbox.epoch()
        try await eventually("a's position recorded") { (try? b.outbox.peerPosition(origin: "a")) == PeerPosition(epoch: epoch, sequence: 1) }
        b.cache.flush()
        let entriesBefore = b.cache.stats().entries
        #expect(entriesBefore == 2)

        let attacker = try await Requester(broker: broker)
        let mallory = Ed25519.PrivateKey()
        let now = b.cache.clock.tick()
        func send(_ m: InvalidationMessage) throws { try attacker.send(Self.topic, m.encoded(), v5Reply: false) }
        var forged = 0

        // 1. The issue's attack: anonymous, unsigned, scope all.
        try send(InvalidationMessage(origin: "nobody", tombstone: Tombstone(scope: .all, hlc: now))); forged += 1
        // 2. a's origin and epoch with sequence 500, unsigned: would have made a's real ones "duplicates".
        try send(InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .tag("weather"), hlc: now),
                                     position: PeerPosition(epoch: epoch, sequence: 500))); forged += 1
        // ... signed by another key claiming to be a.
        let asA = MemberIdentity(gateway: "a", privateKey: mallory)
        try send(InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .all, hlc: now),
                                     position: PeerPosition(epoch: epoch, sequence: 500)).signed(by: asA, fleet: Self.fleet)); forged += 1
        // ... a made-up member with a certificate it signed itself under the fleet key's id.
        let selfCert = try MemberCertificate.issue(fleet: Self.fleet, gateway: "mallory", publicKey: mallory.publicKey,
                                                   keyID: "ops", signer: mallory)
        let certified = MemberIdentity(gateway: "mallory", privateKey: mallory, certificate: selfCert)
        try send(InvalidationMessage(origin: "mallory", tombstone: Tombstone(scope: .all, hlc: now),
                                     position: PeerPosition(epoch: "x", sequence: 7)).signed(by: certified, fleet: Self.fleet)); forged += 1
        // ... under a fleet key id nobody trusts.
        let otherCert = try MemberCertificate.issue(fleet: Self.fleet, gateway: "mallory", publicKey: mallory.publicKey,
                                                    keyID: "elsewhere", signer: mallory)
        try send(InvalidationMessage(origin: "mallory", tombstone: Tombstone(scope: .all, hlc: now))
            .signed(by: MemberIdentity(gateway: "mallory", privateKey: mallory, certificate: otherCert), fleet: Self.fleet)); forged += 1
        // ... posing as an operator with the fleet key's id.
        try send(try InvalidationMessage(origin: "operator", tombstone: Tombstone(scope: .all, hlc: now))
            .signed(byFleetKey: mallory, keyID: "ops", fleet: Self.fleet)); forged += 1
        // ... a genuine signature of a, carried over to another scope and to a later sequence.
        let genuine = InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .tag("news"), hlc: now),
                                          position: PeerPosition(epoch: epoch, sequence: 2)).signed(by: aIdentity, fleet: Self.fleet)
        try send(InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .all, hlc: now), position: genuine.position,
                                     signature: genuine.signature)); forged += 1
        try send(InvalidationMessage(origin: "a", tombstone: genuine.tombstone, position: PeerPosition(epoch: epoch, sequence: 900),
                                     signature: genuine.signature)); forged += 1
        // ... a's genuine message signed for another fleet.
        try send(InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .all, hlc: now), position: PeerPosition(epoch: epoch, sequence: 2))
            .signed(by: aIdentity, fleet: "other-fleet")); forged += 1
        // 3. Watermarks: a forged one ahead of a (a gap would drop b's whole cache), and one under mallory.
        try attacker.send("outpost/site/cache/watermark/a",
                          WatermarkMessage(origin: "a", position: PeerPosition(epoch: epoch, sequence: 1000)).encoded(), v5Reply: false)
        try attacker.send("outpost/site/cache/watermark/a",
                          WatermarkMessage(origin: "a", position: PeerPosition(epoch: epoch, sequence: 1000)).signed(by: asA, fleet: Self.fleet).encoded(),
                          v5Reply: false)
        forged += 2

        try await eventually("b refused all \(forged)") { Self.refused(b) == forged }
        #expect(b.stat("invalidations_applied") == 1)
        #expect(b.stat("gaps") == 0)
        b.cache.flush()
        #expect(b.cache.stats().entries == entriesBefore)
        #expect(Self.has(b, news) && Self.has(b, weather))
        #expect(try b.outbox.peerPosition(origin: "a") == PeerPosition(epoch: epoch, sequence: 1))
        #expect(b.stat("invalidations_refused_unsigned") == 2)
        #expect(b.stat("invalidations_refused_key_mismatch") == 1)
        #expect(b.stat("invalidations_refused_bad_certificate") == 1)
        #expect(b.stat("invalidations_refused_unknown_key") == 1)
        #expect(b.stat("invalidations_refused_bad_signature") == 4)
        #expect(b.stat("watermarks_refused") == 2)
        // a refused the same forgeries (it lists only b), without counting them as its own.
        try await eventually("a refused them too") { a.stat("invalidations_refused") >= forged - 2 }
        #expect(a.stat("invalidations_applied") == 0)

        // a's next real invalidation is sequence 2 and is applied (not taken for a duplicate).
        try a.invalidate(.tag("news"))
        try await eventually("b applied a's second invalidation") { !Self.has(b, news) }
        #expect(b.stat("invalidations_duplicate") == 0)
        #expect(b.stat("gaps") == 0)
        #expect(Self.has(b, weather))
        try await eventually("a's position advanced") { (try? b.outbox.peerPosition(origin: "a")) == PeerPosition(epoch: epoch, sequence: 2) }
        // A replay of a's genuine, signed first message is a duplicate.
        let replay = InvalidationMessage(origin: "a", tombstone: Tombstone(scope: .tag("prices"), hlc: now),
                                         position: PeerPosition(epoch: epoch, sequence: 1)).signed(by: aIdentity, fleet: Self.fleet)
        try send(replay)
        try await eventually("replay seen as duplicate") { b.stat("invalidations_duplicate") == 1 }
        #expect(b.stat("invalidations_applied") == 2)
        // Refusals were logged, rate-limited, as notices.
        await a.stop()
        await b.stop()
    }

    @Test func aMemberCertifiedByTheFleetKeyIsAdmittedWithoutBeingListed() async throws {
        let broker = try MosquittoBroker()
        let (b, _) = try gateway("b", broker: broker)
        let (c, _) = try gateway("c", broker: broker, certified: true)
        try await b.start()
        try await c.start()
        let tea = try Self.fill(b, "tea", tags: ["t"])
        try c.invalidate(.tag("t"))
        try await eventually("b applied c's certified invalidation") { !Self.has(b, tea) }
        #expect(b.stat("invalidations_refused") == 0)
        // A certificate for another fleet (or another gateway id) does not carry over.
        let key = Ed25519.PrivateKey()
        let elsewhere = try MemberCertificate.issue(fleet: "other", gateway: "d", publicKey: key.publicKey, keyID: "ops", signer: fleetKey)
        let d = MemberIdentity(gateway: "d", privateKey: key, certificate: elsewhere)
        let attacker = try await Requester(broker: broker)
        let coffee = try Self.fill(b, "coffee", tags: ["c"])
        try attacker.send(Self.topic, InvalidationMessage(origin: "d", tombstone: Tombstone(scope: .tag("c"), hlc: b.cache.clock.tick()))
            .signed(by: d, fleet: Self.fleet).encoded(), v5Reply: false)
        try await eventually("refused") { b.stat("invalidations_refused_bad_certificate") == 1 }
        #expect(Self.has(b, coffee))
        await b.stop()
        await c.stop()
    }

    @Test func anOperatorInvalidationSignedWithTheFleetKeyReachesEveryGateway() async throws {
        let broker = try MosquittoBroker()
        let (a, _) = try gateway("a", broker: broker)
        let (b, _) = try gateway("b", broker: broker)
        let open = try TestGateway(id: "o", broker: broker.url, fleet: Self.fleet)  // no fleet key: open
        for g in [a, b, open] { try await g.start() }
        let keys = try [a, b, open].map { try Self.fill($0, "faq entry", tags: ["faq"]) }
        let message = try OperatorInvalidation.message(scope: .tag("faq"), origin: "operator", fleet: Self.fleet, keyID: "ops",
                                                       key: fleetKey, nowMillis: UInt64(Date().timeIntervalSince1970 * 1000))
        let connection = OperatorInvalidation.Connection(broker: try BrokerURL(broker.url))
        try await OperatorInvalidation.publish(message, topics: try FleetTopics(fleet: Self.fleet, gateway: "operator"), over: connection)
        for (g, k) in zip([a, b, open], keys) {
            try await eventually("\(g.id) applied the operator's invalidation") { !Self.has(g, k) }
        }
        // Counted just after the cache applied it.
        try await eventually("counted as an operator's") { a.stat("invalidations_operator") == 1 && b.stat("invalidations_operator") == 1 }
        // An operator has no outbox: a fleet-signed message with a sequence is refused.
        let attacker = try await Requester(broker: broker)
        let sequenced = try InvalidationMessage(origin: "operator", tombstone: Tombstone(scope: .all, hlc: a.cache.clock.tick()),
                                                position: PeerPosition(epoch: "e", sequence: 1))
            .signed(byFleetKey: fleetKey, keyID: "ops", fleet: Self.fleet)
        let kept = try Self.fill(a, "kept")
        try attacker.send(Self.topic, sequenced.encoded(), v5Reply: false)
        try await eventually("refused") { a.stat("invalidations_refused_not_allowed") == 1 }
        #expect(Self.has(a, kept))
        // A broker that is not there: a clear error within the timeout, not a hang.
        let nowhere = OperatorInvalidation.Connection(broker: try BrokerURL("mqtt://127.0.0.1:1"))
        await #expect(throws: (any Error).self) {
            try await OperatorInvalidation.publish(message, topics: try FleetTopics(fleet: Self.fleet, gateway: "operator"),
                                                   over: nowhere, timeout: .seconds(3))
        }
        for g in [a, b, open] { await g.stop() }
    }

    @Test func membersFollowTheConfig() async throws {
        let broker = try MosquittoBroker()
        let aKey = Ed25519.PrivateKey()
        let membership = Membership(fleetKeys: ["ops": fleetKey.publicKey], members: ["a": aKey.publicKey])
        let a = try TestGateway(id: "a", broker: broker.url, fleet: Self.fleet) { $0.identity = MemberIdentity(gateway: "a", privateKey: aKey) }
        let b = try TestGateway(id: "b", broker: broker.url, fleet: Self.fleet) { $0.membership = membership }
        try await a.start()
        try await b.start()
        let one = try Self.fill(b, "one", tags: ["one"])
        try a.invalidate(.tag("one"))
        try await eventually("applied while listed") { !Self.has(b, one) }
        // A config that drops a from the members: its invalidations are refused from then on.
        membership.setMembers([:])
        let two = try Self.fill(b, "two", tags: ["two"])
        try a.invalidate(.tag("two"))
        try await eventually("refused once unlisted") { b.stat("invalidations_refused_unknown_member") == 1 }
        #expect(Self.has(b, two))
        await a.stop()
        await b.stop()
    }
}

/// The signed bytes and the wire form, without a broker.
@Suite struct MessageSignatureTests {
    @Test func theSignatureSurvivesTheWireAndCoversEveryField() throws {
        let identity = MemberIdentity(gateway: "gw-1", privateKey: Ed25519.PrivateKey())
        let membership = Membership(fleetKeys: [:], members: ["gw-1": identity.publicKey])
        let base = InvalidationMessage(origin: "gw-1", tombstone: Tombstone(scope: .namespace("faq"), hlc: HLCTimestamp(wallMillis: 1_764_000_000_000, logical: 3)),
                                       position: PeerPosition(epoch: "e1", sequence: 42))
        let signed = base.signed(by: identity, fleet: "f1")
        let received = try InvalidationMessage(payload: signed.encoded())
        #expect(received == signed)
        #expect(membership.authenticate(origin: "gw-1", fleet: "f1", signature: received.signature,
                                        message: received.signedMessage(fleet: "f1")) == .success(.member))
        // Each field changed alone breaks it.
        let variants = [
            InvalidationMessage(origin: "gw-1", tombstone: Tombstone(scope: .namespace("faq2"), hlc: base.tombstone.hlc), position: base.position),
            InvalidationMessage(origin: "gw-1", tombstone: Tombstone(scope: .tag("faq"), hlc: base.tombstone.hlc), position: base.position),
            InvalidationMessage(origin: "gw-1", tombstone: Tombstone(scope: .namespace("faq"), hlc: HLCTimestamp(rawValue: base.tombstone.hlc.rawValue + 1)),
                                position: base.position),
            InvalidationMessage(origin: "gw-1", tombstone: base.tombstone, position: PeerPosition(epoch: "e2", sequence: 42)),
            InvalidationMessage(origin: "gw-1", tombstone: base.tombstone, position: PeerPosition(epoch: "e1", sequence: 43)),
            InvalidationMessage(origin: "gw-1", tombstone: base.tombstone, position: nil),
        ]
        for v in variants {
            #expect(membership.authenticate(origin: "gw-1", fleet: "f1", signature: signed.signature, message: v.signedMessage(fleet: "f1"))
                == .failure(.badSignature))
        }
        #expect(membership.authenticate(origin: "gw-1", fleet: "f2", signature: signed.signature, message: base.signedMessage(fleet: "f2"))
            == .failure(.badSignature))
        #expect(membership.authenticate(origin: "gw-2", fleet: "f1", signature: signed.signature, message: base.signedMessage(fleet: "f1"))
            == .failure(.unknownMember))
    }

    @Test func malformedAuthObjectsAreRejectedByName() throws {
        let base = #"{"origin":"gw-1","hlc":"1764000000000.0","scope":{"all":true},"auth":"#
        let cases: [(String, String)] = [
            ("\"x\"}", "auth"),
            (#"{"sig":"AAAA","key":"AAAA"}}"#, "auth.sig"),
            (#"{"sig":"\#(String(repeating: "A", count: 86))==","key":"AAAA"}}"#, "auth.key"),
            (#"{"sig":"\#(String(repeating: "A", count: 86))=="}}"#, "auth"),
            (#"{"sig":"\#(String(repeating: "A", count: 86))==","key_id":""}}"#, "auth.key_id"),
        ]
        for (tail, field) in cases {
            #expect {
                _ = try InvalidationMessage(payload: Array((base + tail).utf8))
            } throws: { error in
                (error as? QueryError)?.field == field
            }
        }
    }
}
