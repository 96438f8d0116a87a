// Package lang reads the language a client asks for (language=, detect_language=) and
// turns it into what whisper understands: one of whisper's language codes, or
// detection, plus the script Chinese text is written in.
//
// A client names a language as Deepgram's API does, with a BCP-47 tag: "en", "en-US",
// "zh", "zh-CN", "zh-TW", "zh-Hant", "pt-BR", …; or "multi" to have the language found
// for each utterance. Whisper knows a language by its own code (its tokenizer's
// <|xx|> tokens), which for most languages is the tag's first subtag; Codes lists them in
// whisper's order (the order of its language tokens, checked against whisper.cpp in the
// transcriber's tests).
//
// Whisper writes Mandarin in either script, whatever it is asked for; the tag decides
// which one the client gets: Simplified for zh, zh-CN, zh-SG and zh-Hans, Traditional
// for zh-TW, zh-HK, zh-MO and zh-Hant (the scripts those regions use). The conversion
// itself is internal/hanzi's.
package lang
