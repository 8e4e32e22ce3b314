import Foundation
import OutpostCore
import OutpostTesting
import Testing

/// Server-sent events as a client reads them: one `data: …\n\n` event per piece the service
/// produced, carrying it unchanged, a final chunk, then `data: [DONE]`.
@Suite struct LocalAPIStreamingTests {
    /// The events of an SSE body, checked for framing: each a single `data: ` line, the body
    /// ending with a blank line.
    static func events(_ body: String) -> [String] {
        #expect(body.hasSuffix("\n\n"), "the stream does not end with a blank line: \(body.suffix(80).debugDescription)")
        let events = body.components(separatedBy: "\n\n").dropLast()
        for e in events {
            #expect(e.hasPrefix("data: "), "not a data event: \(e.prefix(80).debugDescription)")
            #expect(!e.contains("\n"), "an event spans lines: \(e.prefix(80).debugDescription)")
        }
        return Array(events)
    }

    static func object(_ event: String) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(event.dropFirst(6).utf8)) as? [String: Any], "\(event)")
    }

    static func choice(_ o: [String: Any]) throws -> [String: Any] {
        try #require((o["choices"] as? [[String: Any]])?.first, "\(o)")
    }

    @Test func chatPiecesArriveAsEventsEndingInDone() async throws {
        let server = try await TestServer.start()
        let r = try await server.exchange(HTTP.post(HTTP.chat("stream me", extra: #","stream":true"#)))
        #expect(r.status == 200, "\(r.text)")
        #expect(r.headers["content-type"] == "text/event-stream")
        #expect(r.headers["cache-control"] == "no-cache")
        #expect(r.headers["transfer-encoding"] == "chunked")
        let events = Self.events(r.text)
        try #require(events.count == ScriptedService.pieces.count + 2, "\(events)")
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map(Self.object)
        let id = try #require(chunks[0]["id"] as? String)
        #expect(id.hasPrefix("chatcmpl-"))
        for (i, piece) in ScriptedService.pieces.enumerated() {
            let chunk = chunks[i]
            #expect(chunk["object"] as? String == "chat.completion.chunk")
            #expect(chunk["id"] as? String == id)
            #expect(chunk["model"] as? String == "scripted-model")
            let choice = try Self.choice(chunk)
            let delta = try #require(choice["delta"] as? [String: Any])
            #expect(delta["content"] as? String == piece, "chunk \(i)")
            #expect(delta["role"] as? String == (i == 0 ? "assistant" : nil), "chunk \(i)")
            #expect(choice["finish_reason"] is NSNull, "chunk \(i)")
        }
        let final = try #require(chunks.last)
        #expect(final["id"] as? String == id)
        let finalChoice = try Self.choice(final)
        #expect((finalChoice["delta"] as? [String: Any])?.isEmpty == true)
        #expect(finalChoice["finish_reason"] as? String == "length")
        #expect((final["usage"] as? [String: Any])?["completion_tokens"] as? Int == ScriptedService.pieces.count)
        #expect((final["outpost"] as? [String: Any])?["gateway"] as? String == "gw-scripted")
        await server.stop()
    }

    @Test func completionPiecesArriveAsTextEvents() async throws {
        let server = try await TestServer.start()
        let r = try await server.exchange(HTTP.post("/v1/completions", #"{"prompt":"Once","stream":true}"#))
        #expect(r.status == 200, "\(r.text)")
        let events = Self.events(r.text)
        try #require(events.count == ScriptedService.pieces.count + 2, "\(events)")
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map(Self.object)
        let texts = try chunks.map { try Self.choice($0)["text"] as? String }
        #expect(texts == ScriptedService.pieces + [""])
        #expect(chunks.allSatisfy { $0["object"] as? String == "text_completion" })
        #expect((chunks[0]["id"] as? String)?.hasPrefix("cmpl-") == true)
        #expect(try Self.choice(chunks.last!)["finish_reason"] as? String == "length")
        await server.stop()
    }

    /// Each piece is written when the service produces it, not when the answer is complete.
    @Test func eventsAreWrittenAsProduced() async throws {
        let server = try await TestServer.start()
        let client = try await server.connect()
        defer { client.close() }
        try await client.send(HTTP.post(HTTP.chat("gate", extra: #","stream":true"#)))
        let first = await client.read(until: #""content":"Hel""#, timeout: 10)
        #expect(first.found, "the first piece did not arrive while the service waited: \(String(decoding: first.bytes, as: UTF8.self))")
        let early = String(decoding: first.bytes, as: UTF8.self)
        #expect(!early.contains("[DONE]") && !early.contains(#""content":"lo, ""#), "\(early)")
        server.service.openGate()
        let rest = await client.read(until: "data: [DONE]\n\n", timeout: 10)
        #expect(rest.found)
        #expect(String(decoding: rest.bytes, as: UTF8.self).contains(#""content":"lo, ""#))
        await server.stop()
    }

    /// A service error after the stream began becomes an error event, then `[DONE]`.
    @Test func aServiceErrorInAStreamBecomesAnErrorEvent() async throws {
        let server = try await TestServer.start()
        for (content, type) in [("busy", "server_busy"), ("crash", "server_error")] {
            let r = try await server.exchange(HTTP.post(HTTP.chat(content, extra: #","stream":true"#)))
            #expect(r.status == 200)
            let events = Self.events(r.text)
            try #require(events.count == 2, "\(content): \(events)")
            #expect(events[1] == "data: [DONE]")
            let error = try #require(try Self.object(events[0])["error"] as? [String: Any], "\(content): \(events[0])")
            #expect(error["type"] as? String == type, "\(content): \(events[0])")
        }
        await server.stop()
    }

    /// An HTTP/1.0 client cannot read chunked coding: its stream is delimited by the connection's end.
    @Test func anHTTP10StreamEndsWithTheConnection() async throws {
        let server = try await TestServer.start()
        let client = try await server.connect()
        defer { client.close() }
        let body = HTTP.chat("stream me", extra: #","stream":true"#)
        try await client.send("POST /v1/chat/completions HTTP/1.0\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
        let r = try await client.response()
        #expect(r.status == 200)
        #expect(r.statusLine.hasPrefix("HTTP/1.0 "))
        #expect(r.headers["transfer-encoding"] == nil)
        #expect(Self.events(r.text).count == ScriptedService.pieces.count + 2)
        await server.stop()
    }
}
