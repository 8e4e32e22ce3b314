extension Tokenizer {
    /// The roles llama.cpp gives tokens by their text, whatever the vocabulary's model
    /// (llama-vocab.cpp, "auto-detect special tokens by text" and the end-of-generation list):
    /// the end-of-turn token when the metadata names none, and every token that ends generation.
    /// Tokens found this way are control tokens from then on (so special-token parsing governs
    /// them, and they decode to nothing without `special`), as in llama.cpp, which overrides the
    /// file's type; Gemma 3's user-defined `</s>` is one.
    static func specialTokenRoles(vocabulary: VocabularyIndex, types: inout [TokenType], eos: Int32?, eot: Int32?)
        -> (eot: Int32?, endOfGeneration: Set<Int32>) {
        func find(_ texts: [String]) -> Int32? { texts.lazy.compactMap { vocabulary.id(of: $0.utf8) }.first }
        func text(_ id: Int32) -> String { String(decoding: vocabulary.text(Int(id)), as: UTF8.self) }

        var eot = eot
        if eot == nil, let id = find(SpecialTokenTexts.endOfTurn) {
            eot = id
            types[Int(id)] = .control
        }
        let eom = find(SpecialTokenTexts.endOfMessage)
        if let eom { types[Int(eom)] = .control }

        var endOfGeneration = Set<Int32>()
        for (texts, endsGeneration) in SpecialTokenTexts.fillInTheMiddle {
            guard let id = find(texts) else { continue }
            types[Int(id)] = .control
            if endsGeneration { endOfGeneration.insert(id) }
        }
        for t in SpecialTokenTexts.endOfGeneration {
            guard let id = vocabulary.id(of: t.utf8) else { continue }
            endOfGeneration.insert(id)
            types[Int(id)] = .control
        }
        // gpt-oss: rendered always.
        for t in SpecialTokenTexts.alwaysRendered {
            if let id = vocabulary.id(of: t.utf8) { types[Int(id)] = .userDefined }
        }
        for id in [eos, eot, eom].compactMap({ $0 }) { endOfGeneration.insert(id) }

        // o200k_harmony and solar-open: `<|end|>` ends a message, not generation.
        let eogTexts = Dictionary(endOfGeneration.map { (text($0), $0) }, uniquingKeysWith: { a, _ in a })
        let hasCall = eogTexts["<|call|>"] != nil || eogTexts["<|calls|>"] != nil
        if let end = eogTexts["<|end|>"], hasCall, eogTexts["<|return|>"] != nil || eogTexts["<|flush|>"] != nil {
            endOfGeneration.remove(end)
            types[Int(end)] = .userDefined
        }
        // Gemma 4 and PLaMo 2: `</s>` is a normal token.
        if let s = eogTexts["</s>"], eogTexts["<|tool_response>"] != nil || eogTexts["<|plamo:eos|>"] != nil {
            endOfGeneration.remove(s)
            types[Int(s)] = .normal
        }
        return (eot, endOfGeneration)
    }
}

/// The token texts llama.cpp (llama-vocab.cpp) recognises; each list in its order of preference.
private enum SpecialTokenTexts {
    static let endOfTurn = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
                            "<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]", "<｜end▁of▁sentence｜>",
                            "<end_of_utterance>"]
    static let endOfMessage = ["<|eom_id|>"]
    /// Prefix, suffix, middle, pad, repository and file separator; the last three end generation.
    static let fillInTheMiddle: [([String], Bool)] = [
        (["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
          "<|code_prefix|>", "<|prefix|>"], false),
        (["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
          "<|code_suffix|>", "<|suffix|>"], false),
        (["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
          "<|code_middle|>", "<|middle|>"], false),
        (["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"], true),
        (["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"], true),
        (["<|file_sep|>"], true),
    ]
    static let endOfGeneration = ["<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>",
                                  "<|calls|>", "<end_of_turn>", "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>",
                                  "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>", "<eos>",
                                  "<turn|>", "<|tool_response>", "<｜end▁of▁sentence｜>", "[e~["]
    static let alwaysRendered = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"]
}
