#pragma once
// A deterministic generator of English-like documents for the demo world (design.md "Models and
// data without a network"): articles on a handful of topics, recipes, forecasts, market reports,
// match reports, letters, Q&A, CSV tables and Python/C snippets, with names, numbers, dates,
// prices, quotes and lists. The variety is what makes SAE features readable in the demo: digits,
// code indentation, a topic's vocabulary, quotation marks, list bullets each get their own
// contexts. Same seed and version -> byte-identical text on every machine (own PRNG,
// core/demo/DemoRandom.h).
#include <cstdint>
#include <string>
#include <vector>

#include "demo/DemoRandom.h"

namespace sae {

class CorpusGenerator {
 public:
  // Bumped whenever the output for a seed changes, so cached demo worlds are rebuilt.
  static constexpr int kVersion = 1;

  explicit CorpusGenerator(uint64_t seed);

  // The next document: UTF-8 text (mostly ASCII; a few accented letters and symbols such as
  // "°C" and "€"), ending in a newline, between about 60 bytes and 4 KB.
  std::string nextDocument();

  // Documents until their total size reaches `targetBytes` (the last one is kept whole).
  std::vector<std::string> generate(size_t targetBytes);

 private:
  std::string article(int topic);
  std::string recipe();
  std::string forecast();
  std::string marketReport();
  std::string matchReport();
  std::string letter();
  std::string questions();
  std::string csvTable();
  std::string pythonSnippet();
  std::string cSnippet();

  // Expands {slot} placeholders of `pattern` (topic slots from `topic`, -1 for none).
  std::string fill(const std::string& pattern, int topic);
  std::string slot(const std::string& name, int topic);
  std::string sentence(int topic);
  std::string paragraph(int topic, int sentences);
  std::string bulletList(int topic);

  std::string personName();
  std::string date();
  std::string number(int lo, int hi);
  std::string decimal(int lo, int hi, int places);
  std::string withCommas(int64_t value);

  DemoRandom rng_;
};

}  // namespace sae
