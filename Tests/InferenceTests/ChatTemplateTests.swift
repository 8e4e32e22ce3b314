import Foundation
import Testing
@testable import Inference

@Suite struct ChatTemplateTests {
    /// Rendering the model's own template and tokenizing it gives llama.cpp's prompt ids.
    @Test func goldenPromptIds() throws {
        let file = try TestSupport.file.get()
        let tokenizer = try TestSupport.tokenizer.get()
        let template = try ChatTemplate(recognizing: file.string("tokenizer.chat_template") ?? "")
        #expect(template.family == .chatml)
        #expect(template.defaultSystemMessage == "You are a helpful AI assistant named SmolLM, trained by Hugging Face")
        let golden = try TestSupport.fixture("greedy.json") as! [String: Any]
        var checked = 0
        for c in golden["cases"] as! [[String: Any]] where (c["kind"] as? String) == "chat" {
            let messages = (c["messages"] as! [[String: String]]).map { ChatTurn(role: $0["role"]!, content: $0["content"]!) }
            let text = template.render(messages)
            #expect(text == c["prompt_text"] as! String)
            let ids = tokenizer.encode(text, parseSpecial: true)
            #expect(ids == (c["prompt_ids"] as! [Int]).map(Int32.init))
            checked += 1
        }
        #expect(checked > 0)
    }

    @Test func chatMLWithSystemMessageHasNoDefault() {
        let t = ChatTemplate(family: .chatml, defaultSystemMessage: "default")
        let text = t.render([ChatTurn(role: "system", content: "S"), ChatTurn(role: "user", content: "U")])
        #expect(text == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n")
    }

    @Test func recognisesFamilies() throws {
        let llama3 = "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n{{ m['content'] }}<|eot_id|>{% endfor %}"
        #expect(try ChatTemplate(recognizing: llama3).family == .llama3)
        #expect(try ChatTemplate(recognizing: "{{ '<start_of_turn>' + role }}").family == .gemma)
        #expect(try ChatTemplate(recognizing: "{{ '<|user|>\n' + message['content'] + eos_token }}{{ '<|assistant|>' }}").family == .zephyr)
        #expect(try ChatTemplate(recognizing: "{{ '<|user|>' }}{{ '<|assistant|>' }}{{ '<|end|>' }}").family == .phi3)
        #expect(try ChatTemplate(recognizing: "{{ bos_token + '[INST] ' + content.strip() }}<<SYS>>").family == .llama2SysStrip)
        #expect(try ChatTemplate(recognizing: "[SYSTEM_PROMPT]{{ x }}[INST]").family == .mistralV7)
        #expect(throws: InferenceError.self) { try ChatTemplate(recognizing: "{{ something else }}") }
        do {
            _ = try ChatTemplate(recognizing: "unknown")
        } catch let e as InferenceError {
            #expect(e.description.contains("--template"))
        }
    }

    @Test func rendersOtherFamilies() throws {
        let msgs = [ChatTurn(role: "system", content: "Sys"), ChatTurn(role: "user", content: " Hi ")]
        #expect(try ChatTemplate(named: "llama3").render(msgs)
            == "<|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(try ChatTemplate(named: "llama2-sys").render(msgs) == "[INST] <<SYS>>\nSys\n<</SYS>>\n\n Hi  [/INST]")
        #expect(try ChatTemplate(named: "gemma").render(msgs) == "<start_of_turn>user\nSys\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        #expect(try ChatTemplate(named: "zephyr").render(msgs) == "<|system|>\nSys</s>\n<|user|>\n Hi </s>\n<|assistant|>\n")
        #expect(try ChatTemplate(named: "phi3").render(msgs) == "<|system|>\nSys<|end|>\n<|user|>\n Hi <|end|>\n<|assistant|>\n")
        #expect(try ChatTemplate(named: "mistral-v7").render(msgs) == "[SYSTEM_PROMPT] Sys[/SYSTEM_PROMPT][INST]  Hi [/INST]")
        #expect(throws: InferenceError.self) { try ChatTemplate(named: "nope") }
    }
    /// The published templates of the families people run on a Pi (Fixtures/chat-templates, as
    /// llama.cpp keeps them in models/templates/ from each model's tokenizer_config.json) are
    /// recognised, and render a conversation as the Jinja does for it (the BOS the Jinja writes as
    /// text is the tokenizer's to add; Llama 3.2's date preamble is left out, as llama.cpp's
    /// built-in llama3 format does).
    @Test func recognisesThePublishedTemplates() throws {
        func template(_ name: String) throws -> ChatTemplate {
            let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .appendingPathComponent("Fixtures/chat-templates/\(name).jinja")
            return try ChatTemplate(recognizing: String(contentsOf: url, encoding: .utf8))
        }
        let user = [ChatTurn(role: "user", content: "Hi")]
        let both = [ChatTurn(role: "system", content: "Sys"), ChatTurn(role: "user", content: "Hi")]

        let qwen25 = try template("Qwen-Qwen2.5-7B-Instruct")
        #expect(qwen25.family == .chatml)
        #expect(qwen25.render(user) == "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        #expect(qwen25.render(both) == "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")

        let qwen3 = try template("Qwen-Qwen3-0.6B")
        #expect(qwen3.family == .chatml)
        #expect(qwen3.defaultSystemMessage == nil)
        #expect(qwen3.render(user) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")

        let llama = try template("meta-llama-Llama-3.2-3B-Instruct")
        #expect(llama.family == .llama3)
        #expect(llama.render(user) == "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")

        let phi = try template("microsoft-Phi-3.5-mini-instruct")
        #expect(phi.family == .phi3)
        #expect(phi.render(both) == "<|system|>\nSys<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\n")

        let gemma = try template("google-gemma-2-2b-it")
        #expect(gemma.family == .gemma)
        #expect(gemma.render(user) == "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n")
    }
}
