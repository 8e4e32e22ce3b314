/// A chat prompt format, recognised from the model's `tokenizer.chat_template` by marker
/// substrings as llama.cpp's `llm_chat_detect_template` does, and rendered as llama.cpp renders it.
public struct ChatTemplate: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case chatml
        case llama3
        case llama2
        case llama2Sys = "llama2-sys"
        case llama2SysBOS = "llama2-sys-bos"
        case llama2SysStrip = "llama2-sys-strip"
        case mistralV1 = "mistral-v1"
        case mistralV3 = "mistral-v3"
        case mistralV3Tekken = "mistral-v3-tekken"
        case mistralV7 = "mistral-v7"
        case zephyr
        case phi3
        case gemma
    }

    public let family: Family
    /// System message the template inserts when the conversation has none (SmolLM2's ChatML does).
    public let defaultSystemMessage: String?

    public init(family: Family, defaultSystemMessage: String? = nil) {
        self.family = family
        self.defaultSystemMessage = defaultSystemMessage
    }

    /// A family by its `--template` name.
    public init(named name: String) throws {
        guard let family = Family(rawValue: name) else {
            throw InferenceError.unknownChatTemplate("no chat template is named '\(name)'")
        }
        self.init(family: family)
    }

    /// Recognises the Jinja source of a chat template.
    public init(recognizing source: String) throws {
        func has(_ s: String) -> Bool { source.contains(s) }
        if has("<|im_start|>") {
            self.init(family: .chatml, defaultSystemMessage: Self.chatMLDefaultSystem(source))
        } else if source.hasPrefix("mistral") || has("[INST]") {
            if has("[SYSTEM_PROMPT]") {
                self.init(family: .mistralV7)
            } else if has("' [INST] ' + system_message") || has("[AVAILABLE_TOOLS]") {
                if has(" [INST]") {
                    self.init(family: .mistralV1)
                } else if has("\"[INST]\"") {
                    self.init(family: .mistralV3Tekken)
                } else {
                    self.init(family: .mistralV3)
                }
            } else if has("content.strip()") {
                self.init(family: .llama2SysStrip)
            } else if has("bos_token + '[INST]") {
                self.init(family: .llama2SysBOS)
            } else if has("<<SYS>>") {
                self.init(family: .llama2Sys)
            } else {
                self.init(family: .llama2)
            }
        } else if has("<|assistant|>") && has("<|end|>") {
            self.init(family: .phi3)
        } else if has("<|user|>") && (has("</s>") || has("eos_token") || has("<|endoftext|>")) {
            self.init(family: .zephyr)
        } else if has("<start_of_turn>") {
            self.init(family: .gemma)
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            self.init(family: .llama3)
        } else {
            throw InferenceError.unknownChatTemplate("the model's chat template is not one this engine recognises")
        }
    }

    /// The system message a ChatML template writes when the first message is not a system one:
    /// the first `'<|im_start|>system\n…<|im_end|>'` literal with no template expression inside,
    /// in a template that tests the first message's role (SmolLM2: `!= 'system'`; Qwen 2.5:
    /// `== 'system'` … `else`). Qwen 3's template has no such literal, so no default.
    private static func chatMLDefaultSystem(_ source: String) -> String? {
        let guards = ["messages[0]['role'] != 'system'", "messages[0][\"role\"] != \"system\"",
                      "messages[0]['role'] == 'system'", "messages[0].role == 'system'"]
        guard guards.contains(where: { source.contains($0) }) else { return nil }
        for newline in ["\n", "\\n"] {
            let marker = "<|im_start|>system" + newline
            var rest = source[...]
            while let start = rest.firstRange(of: marker),
                  let end = rest[start.upperBound...].firstRange(of: "<|im_end|>") {
                let text = String(rest[start.upperBound..<end.lowerBound])
                rest = rest[start.upperBound...]
                // A literal in the Jinja source: no template expressions inside, escapes resolved.
                guard !text.contains("{{"), !text.contains("{%"), !text.contains("'"), !text.contains("\"") else { continue }
                return text.replacing("\\n", with: "\n")
            }
        }
        return nil
    }

    /// The prompt text for `messages`, ending with the assistant's turn opener when
    /// `addGenerationPrompt` is set. Special-token text is left in place for the tokenizer.
    public func render(_ messages: [ChatTurn], addGenerationPrompt: Bool = true) -> String {
        var out = ""
        func trim(_ s: String) -> String {
            var sub = Substring(s)
            while let f = sub.first, f.isWhitespace { sub.removeFirst() }
            while let l = sub.last, l.isWhitespace { sub.removeLast() }
            return String(sub)
        }
        switch family {
        case .chatml:
            if let def = defaultSystemMessage, messages.first?.role != "system" {
                out += "<|im_start|>system\n\(def)<|im_end|>\n"
            }
            for m in messages { out += "<|im_start|>\(m.role)\n\(m.content)<|im_end|>\n" }
            if addGenerationPrompt { out += "<|im_start|>assistant\n" }

        case .llama3:
            for m in messages {
                out += "<|start_header_id|>\(m.role)<|end_header_id|>\n\n\(trim(m.content))<|eot_id|>"
            }
            if addGenerationPrompt { out += "<|start_header_id|>assistant<|end_header_id|>\n\n" }

        case .llama2, .llama2Sys, .llama2SysBOS, .llama2SysStrip:
            let supportsSystem = family != .llama2
            let bosInHistory = family == .llama2SysBOS
            let strip = family == .llama2SysStrip
            var insideTurn = true
            out += "[INST] "
            for m in messages {
                let content = strip ? trim(m.content) : m.content
                if !insideTurn {
                    insideTurn = true
                    out += bosInHistory ? "<s>[INST] " : "[INST] "
                }
                switch m.role {
                case "system":
                    out += supportsSystem ? "<<SYS>>\n\(content)\n<</SYS>>\n\n" : "\(content)\n"
                case "user":
                    out += "\(content) [/INST]"
                default:
                    out += "\(content)</s>"
                    insideTurn = false
                }
            }

        case .mistralV1, .mistralV3, .mistralV3Tekken:
            let leading = family == .mistralV1 ? " " : ""
            let trailing = family == .mistralV3Tekken ? "" : " "
            let trimAssistant = family == .mistralV3
            var insideTurn = false
            for m in messages {
                if !insideTurn {
                    out += "\(leading)[INST]\(trailing)"
                    insideTurn = true
                }
                switch m.role {
                case "system": out += "\(m.content)\n\n"
                case "user": out += "\(m.content)\(leading)[/INST]"
                default:
                    out += "\(trailing)\(trimAssistant ? trim(m.content) : m.content)</s>"
                    insideTurn = false
                }
            }

        case .mistralV7:
            for m in messages {
                switch m.role {
                case "system": out += "[SYSTEM_PROMPT] \(m.content)[/SYSTEM_PROMPT]"
                case "user": out += "[INST] \(m.content)[/INST]"
                default: out += " \(m.content)</s>"
                }
            }

        case .zephyr:
            for m in messages { out += "<|\(m.role)|>\n\(m.content)</s>\n" }
            if addGenerationPrompt { out += "<|assistant|>\n" }

        case .phi3:
            for m in messages { out += "<|\(m.role)|>\n\(m.content)<|end|>\n" }
            if addGenerationPrompt { out += "<|assistant|>\n" }

        case .gemma:
            var system = ""
            for m in messages {
                if m.role == "system" {
                    system += trim(m.content)
                    continue
                }
                let role = m.role == "assistant" ? "model" : m.role
                out += "<start_of_turn>\(role)\n"
                if !system.isEmpty && role != "model" {
                    out += "\(system)\n\n"
                    system = ""
                }
                out += "\(trim(m.content))<end_of_turn>\n"
            }
            if addGenerationPrompt { out += "<start_of_turn>model\n" }
        }
        return out
    }
}
