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
            let messages = (c["messages"] as! [[String: String]]).map { ChatMessage(role: $0["role"]!, content: $0["content"]!) }
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
        let text = t.render([ChatMessage(role: "system", content: "S"), ChatMessage(role: "user", content: "U")])
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
        let msgs = [ChatMessage(role: "system", content: "Sys"), ChatMessage(role: "user", content: " Hi ")]
        #expect(try ChatTemplate(named: "llama3").render(msgs)
            == "<|start_header_id|>system<|end_header_id|>\n\nSys<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
        #expect(try ChatTemplate(named: "llama2-sys").render(msgs) == "[INST] <<SYS>>\nSys\n<</SYS>>\n\n Hi  [/INST]")
        #expect(try ChatTemplate(named: "gemma").render(msgs) == "<start_of_turn>user\nSys\n\nHi<end_of_turn>\n<start_of_turn>model\n")
        #expect(try ChatTemplate(named: "zephyr").render(msgs) == "<|system|>\nSys</s>\n<|user|>\n Hi </s>\n<|assistant|>\n")
        #expect(try ChatTemplate(named: "phi3").render(msgs) == "<|system|>\nSys<|end|>\n<|user|>\n Hi <|end|>\n<|assistant|>\n")
        #expect(try ChatTemplate(named: "mistral-v7").render(msgs) == "[SYSTEM_PROMPT] Sys[/SYSTEM_PROMPT][INST]  Hi [/INST]")
        #expect(throws: InferenceError.self) { try ChatTemplate(named: "nope") }
    }
}
