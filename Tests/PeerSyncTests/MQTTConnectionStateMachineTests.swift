import Testing
@testable import PeerSync
@testable import MQTT

/// The reconnect state machine, step by step, without I/O.
@Suite struct MQTTConnectionStateMachineTests {
    typealias SM = MQTTConnection.StateMachine

    @Test func firstConnectFailureIsRetriedWithGrowingCappedDelays() {
        var sm = SM(initialDelayMillis: 100, maximumDelayMillis: 1_000)
        #expect(sm.start(nowMillis: 0) == .connect)
        #expect(sm.start(nowMillis: 0) == .none)  // only once
        // unit 1.0: the full delay; each failure doubles it up to the cap.
        var now: UInt64 = 0
        var delays: [UInt64] = []
        for _ in 0..<6 {
            guard case .wait(let until) = sm.connectFailed(nowMillis: now, unit: 1.0) else {
                Issue.record("expected a wait")
                return
            }
            delays.append(until - now)
            now = until
            #expect(sm.next(nowMillis: now - 1) == .wait(untilMillis: until))
            #expect(sm.next(nowMillis: now) == .connect)
        }
        #expect(delays == [100, 200, 400, 800, 1_000, 1_000])
        #expect(sm.failures == 6)
    }

    @Test func jitterKeepsHalfTheDelay() {
        let sm = SM(initialDelayMillis: 1_000, maximumDelayMillis: 60_000)
        #expect(sm.delay(failures: 1, unit: 0) == 500)
        #expect(sm.delay(failures: 1, unit: 0.5) == 750)
        #expect(sm.delay(failures: 3, unit: 0) == 2_000)
        #expect(sm.delay(failures: 3, unit: .nan) == 2_000)
        #expect(sm.baseDelay(failures: 200) == 60_000)  // no overflow
    }

    @Test func connAckResetsBackoffAndReportsSessionLossOnlyAfterASession() {
        var sm = SM(initialDelayMillis: 100, maximumDelayMillis: 1_000)
        _ = sm.start(nowMillis: 0)
        _ = sm.connectFailed(nowMillis: 0, unit: 1)
        _ = sm.connectFailed(nowMillis: 0, unit: 1)  // ignored state-wise: already backing off
        #expect(sm.next(nowMillis: 10_000) == .connect)
        #expect(sm.next(nowMillis: 10_000) == .pump)  // awaiting CONNACK
        #expect(sm.connAck(reasonCode: 0, sessionPresent: false, nowMillis: 10_001, unit: 0) == .connected(sessionLost: false))
        #expect(sm.isConnected && sm.hadSession && sm.failures == 0)
        #expect(sm.next(nowMillis: 10_002) == .pump)

        // Connection lost: quick first retry.
        #expect(sm.connectionLost(nowMillis: 20_000, unit: 1) == .wait(untilMillis: 20_100))
        #expect(sm.next(nowMillis: 20_100) == .connect)
        // The broker forgot us: session lost.
        #expect(sm.connAck(reasonCode: 0, sessionPresent: false, nowMillis: 20_101, unit: 0) == .connected(sessionLost: true))
        _ = sm.connectionLost(nowMillis: 30_000, unit: 1)
        _ = sm.next(nowMillis: 40_000)
        #expect(sm.connAck(reasonCode: 0, sessionPresent: true, nowMillis: 40_001, unit: 0) == .connected(sessionLost: false))
    }

    @Test func sessionRememberedFromAnEarlierRun() {
        var sm = SM(hadSession: true)
        _ = sm.start(nowMillis: 0)
        #expect(sm.connAck(reasonCode: 0, sessionPresent: false, nowMillis: 1, unit: 0) == .connected(sessionLost: true))
    }

    @Test func refusedConnAckBacksOffAndStrayConnAckIsIgnored() {
        var sm = SM(initialDelayMillis: 100, maximumDelayMillis: 1_000)
        #expect(sm.connAck(reasonCode: 0, sessionPresent: true, nowMillis: 0, unit: 0) == .ignored)
        _ = sm.start(nowMillis: 0)
        #expect(sm.connAck(reasonCode: 135, sessionPresent: false, nowMillis: 5, unit: 1) == .refused(retryAtMillis: 105))
        #expect(!sm.isConnected && !sm.hadSession)
        // The broker then closes the socket: the loop reports it; still waiting for the same retry.
        #expect(sm.connectionLost(nowMillis: 6, unit: 1) == .wait(untilMillis: 105))
    }

    @Test func connAckTimeoutIsOverdue() {
        var sm = SM(connAckTimeoutMillis: 1_000)
        _ = sm.start(nowMillis: 100)
        #expect(!sm.connAckOverdue(nowMillis: 1_099))
        #expect(sm.connAckOverdue(nowMillis: 1_100))
        #expect(sm.connectionLost(nowMillis: 1_100, unit: 0) == .wait(untilMillis: 1_150))
    }

    @Test func stopIsFinal() {
        var sm = SM()
        _ = sm.start(nowMillis: 0)
        sm.stop()
        #expect(sm.next(nowMillis: 1) == .none)
        #expect(sm.connAck(reasonCode: 0, sessionPresent: true, nowMillis: 2, unit: 0) == .ignored)
    }
}
