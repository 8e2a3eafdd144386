#include "demo/CorpusGenerator.h"

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace sae {

namespace {

using Words = std::vector<std::string>;

// One topic: its vocabulary and sentence patterns. {noun} {adj} {verb} {place} draw from the
// topic's own lists, so each topic's words co-occur (a "cooking" feature has contexts to find).
struct Topic {
  std::string name;
  Words nouns, adjectives, verbs, places, titles, patterns;
};

const std::vector<Topic>& topics() {
  static const std::vector<Topic> all = {
      {"weather",
       {"rain", "storm", "wind", "snow", "fog", "heat wave", "cold front", "cloud cover",
        "humidity", "forecast", "thunderstorm", "drizzle", "frost", "sunshine"},
       {"heavy", "light", "humid", "chilly", "mild", "windy", "stormy", "dry", "cloudy", "bright"},
       {"moved across", "hit", "cleared from", "settled over", "swept through", "lingered over"},
       {"the coast", "the valley", "the northern hills", "the city center", "the plains"},
       {"Storm warning for {city}", "A {adj} week ahead", "Weather update: {day}"},
       {"A {adj} {noun} {verb} {place} on {day}.",
        "Temperatures in {city} reached {temp} by the afternoon.",
        "Forecasters expect {n} mm of {noun} before {time}.",
        "The {noun} will ease by {day}, with highs near {temp}.",
        "Residents of {city} reported {adj} conditions and {noun}.",
        "Winds of up to {n} km/h {verb} {place} overnight.",
        "There is a {pct} chance of {noun} on {day}."}},
      {"cooking",
       {"onion", "garlic", "butter", "flour", "tomato", "lentil", "rice", "olive oil", "basil",
        "pepper", "lemon", "dough", "broth", "cinnamon", "yogurt"},
       {"fresh", "crispy", "golden", "tender", "spicy", "smoky", "creamy", "sweet", "savory"},
       {"chopped", "simmered", "roasted", "whisked", "stirred", "baked", "seasoned", "folded"},
       {"the pan", "the oven", "a large pot", "the mixing bowl", "a baking tray"},
       {"How to cook {adj} {noun}", "{first}'s {adj} {noun} soup", "Weeknight {noun} pasta"},
       {"{first} {verb} the {noun} in {place} for {n} minutes.",
        "Add the {noun} and cook until {adj}.", "The {adj} {noun} goes well with {noun2}.",
        "Keep the oven at {n}0 degrees and check the {noun} often.",
        "A pinch of {noun} makes the sauce {adj}.",
        "She {verb} the {noun} and {noun2} together in {place}."}},
      {"sports",
       {"match", "season", "goal", "coach", "striker", "goalkeeper", "final", "league", "team",
        "penalty", "referee", "championship", "tournament"},
       {"late", "stunning", "narrow", "dominant", "tense", "historic", "defensive", "brilliant"},
       {"won", "lost", "scored", "defended", "celebrated", "equalized", "missed"},
       {"the stadium", "the home ground", "the capital", "the semifinal", "extra time"},
       {"{team} win the {noun}", "A {adj} night for {team}", "{team} {score} {team2}"},
       {"{team} {verb} the {noun} against {team2} at {place}.",
        "{name} scored in the {ord} minute to give {team} the lead.",
        "The {adj} {noun} ended {score} after {n} minutes.",
        "Coach {last} said the {noun} was {adj}.", "Over {big} fans watched the {noun} in {city}.",
        "{team} have {verb} {n} of their last {n2} games."}},
      {"finance",
       {"market", "stock", "bond", "interest rate", "inflation", "profit", "revenue", "share price",
        "dividend", "budget", "investor", "earnings", "loan"},
       {"strong", "weak", "volatile", "steady", "quarterly", "annual", "record", "cautious"},
       {"rose", "fell", "climbed", "dropped", "recovered", "slipped", "doubled"},
       {"the exchange", "early trading", "the third quarter", "the bond market"},
       {"{company} shares {verb} after {adj} earnings", "Markets in {month}", "{ticker} update"},
       {"Shares of {company} {verb} {pct} to {price} on {day}.",
        "The central bank kept the {noun} at {pct} in {month}.",
        "{company} reported {adj} {noun} of {price} million for {year}.",
        "Analysts expect the {noun} to stay {adj} through {month}.",
        "{ticker} {verb} {dec} points in {place}.",
        "{name}, an investor in {city}, called the {noun} {adj}."}},
      {"science",
       {"cell", "protein", "galaxy", "molecule", "experiment", "sample", "telescope", "gene",
        "particle", "crystal", "enzyme", "planet", "fossil", "neuron"},
       {"tiny", "distant", "rare", "stable", "ancient", "bright", "complex", "unexpected"},
       {"observed", "measured", "discovered", "tested", "detected", "mapped", "analyzed"},
       {"the lab", "the field station", "the observatory", "deep space", "the ocean floor"},
       {"Researchers find {adj} {noun}", "New study on the {noun}", "Inside {place}"},
       {"Dr. {last} and her team {verb} a {adj} {noun} in {place}.",
        "The {noun} measured {dec} micrometers across.",
        "In {year}, scientists first {verb} the {noun}.",
        "Each {noun} was {verb} {n} times to rule out errors.",
        "The results, published in {month} {year}, suggest the {noun} is {adj}.",
        "\"We {verb} something {adj},\" said {name}."}},
      {"travel",
       {"train", "flight", "hotel", "museum", "beach", "market", "harbor", "bridge", "castle",
        "ferry", "café", "old town", "mountain trail"},
       {"crowded", "quiet", "charming", "historic", "scenic", "busy", "peaceful", "famous"},
       {"visited", "explored", "booked", "walked to", "photographed", "reached"},
       {"the old quarter", "the waterfront", "the main square", "the national park"},
       {"{n} days in {city}", "A {adj} weekend in {city}", "Getting around {city}"},
       {"We {verb} the {adj} {noun} near {place} in {city}.",
        "The {noun} from {city} to {city2} takes {n} hours.",
        "Tickets cost {price} and the {noun} opens at {time}.",
        "{name} recommends the {noun} at sunset.", "The {adj} {noun} was built in {year}.",
        "Our {noun} left {city} at {time} on {day}."}},
      {"music",
       {"album", "song", "concert", "guitar", "piano", "band", "singer", "melody", "tour",
        "orchestra", "chorus", "drummer"},
       {"new", "loud", "gentle", "catchy", "haunting", "live", "acoustic", "upbeat"},
       {"released", "performed", "recorded", "wrote", "played", "announced"},
       {"the festival", "a small club", "the concert hall", "the studio"},
       {"{name} returns with a {adj} {noun}", "Review: {adj} {noun}", "The {noun} of {year}"},
       {"{name} {verb} a {adj} {noun} at {place}.",
        "The {noun} has {n} tracks and runs {n2} minutes.",
        "Fans in {city} sang along to every {noun}.",
        "The band {verb} their first {noun} in {year}.",
        "Tickets for the {noun} sold out in {n} minutes."}},
      {"health",
       {"sleep", "exercise", "diet", "vitamin", "heart rate", "walk", "stretch", "hydration",
        "blood pressure", "stress", "checkup"},
       {"daily", "regular", "healthy", "gentle", "moderate", "balanced", "simple"},
       {"improved", "reduced", "tracked", "recommended", "measured", "increased"},
       {"the clinic", "the gym", "the park", "home"},
       {"{n} tips for better {noun}", "Why {noun} matters", "Ask the doctor: {noun}"},
       {"Doctors {verb} {n} minutes of {noun} a day.",
        "A {adj} {noun} routine {verb} sleep for {pct} of patients.",
        "{name} {verb} her {noun} at {place} every {day}.",
        "Drink {n} glasses of water and keep the {noun} {adj}.",
        "The study followed {big} adults for {n} years."}},
  };
  return all;
}

const Words kFirstNames = {"Alice", "Bruno", "Chen",  "Dana",   "Elena",  "Farid", "Grace", "Hugo",
                           "Ines",  "Jonas", "Keiko", "Liam",   "Maria",  "Noah",  "Olga",  "Priya",
                           "Quinn", "Rosa",  "Samir", "Tara",   "Umar",   "Vera",  "Wei",   "Yusuf",
                           "Zoe",   "José",  "Chloé", "Anders", "Fatima", "Mateo"};
const Words kLastNames = {"Smith",    "Garcia",    "Nguyen", "Okafor",  "Muller", "Rossi", "Kim",
                          "Patel",    "Johansson", "Silva",  "Novak",   "Tanaka", "Brown", "Haddad",
                          "Kowalski", "Dubois",    "Lopez",  "Ivanova", "Martin", "Costa"};
const Words kCities = {"Lisbon", "Oslo",     "Nairobi", "Toronto", "Kyoto",  "Austin", "Lyon",
                       "Porto",  "Seoul",    "Denver",  "Krakow",  "Cairo",  "Quito",  "Perth",
                       "Dublin", "Montréal", "Hanoi",   "Bergen",  "Tucson", "Genoa"};
const Words kTeams = {"Rovers",    "United", "Falcons",  "Rangers", "Wolves",
                      "Harbor FC", "City",   "Athletic", "Lions",   "Mariners"};
const Words kCompanies = {"Northwind",     "Acme Corp",      "Bluefin Labs",
                          "Solaris",       "Kestrel Bank",   "Greenfield",
                          "Orbital Foods", "Vantage Motors", "Ironleaf"};
const Words kTickers = {"NWND", "ACME", "BFL", "SOLR", "KSTB", "GRFD", "ORBF", "VNTG", "IRLF"};
const Words kDays = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"};
const Words kMonths = {"January", "February", "March",     "April",   "May",      "June",
                       "July",    "August",   "September", "October", "November", "December"};
const Words kShortMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
const Words kUnits = {"g", "ml", "cups", "tablespoons", "teaspoons", "kg", "cloves", "slices"};
const Words kConnectives = {"Meanwhile, ",   "However, ", "Later, ",   "In the end, ",
                            "As a result, ", "Still, ",   "Earlier, ", "By contrast, "};

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string ordinal(int n) {
  const int mod100 = n % 100;
  const char* suffix = (mod100 >= 11 && mod100 <= 13) ? "th"
                       : n % 10 == 1                  ? "st"
                       : n % 10 == 2                  ? "nd"
                       : n % 10 == 3                  ? "rd"
                                                      : "th";
  return std::to_string(n) + suffix;
}

std::string twoDigits(int n) {
  return (n < 10 ? "0" : "") + std::to_string(n);
}

// Python-ish and C-ish identifiers and fragments for the code snippets.
const Words kVarNames = {"total", "count", "items", "values", "result", "index", "buffer", "scores",
                         "names", "data",  "size",  "offset", "row",    "key",   "value"};
const Words kFuncVerbs = {"load",      "parse",  "compute", "update", "filter", "merge", "count",
                          "normalize", "format", "read",    "write",  "find",   "sort",  "check"};
const Words kFuncNouns = {"records", "scores", "prices", "names", "rows",   "tokens",
                          "events",  "values", "items",  "lines", "orders", "samples"};

}  // namespace

CorpusGenerator::CorpusGenerator(uint64_t seed) : rng_(seed) {}

std::vector<std::string> CorpusGenerator::generate(size_t targetBytes) {
  std::vector<std::string> docs;
  size_t total = 0;
  while (total < targetBytes) {
    docs.push_back(nextDocument());
    total += docs.back().size();
  }
  return docs;
}

std::string CorpusGenerator::nextDocument() {
  // Weights: articles dominate (they carry the topics), code is common enough for its features.
  const int roll = static_cast<int>(rng_.below(100));
  const int nTopics = static_cast<int>(topics().size());
  if (roll < 40) return article(static_cast<int>(rng_.below(nTopics)));
  if (roll < 46) return recipe();
  if (roll < 52) return forecast();
  if (roll < 58) return marketReport();
  if (roll < 64) return matchReport();
  if (roll < 69) return letter();
  if (roll < 74) return questions();
  if (roll < 79) return csvTable();
  if (roll < 91) return pythonSnippet();
  return cSnippet();
}

std::string CorpusGenerator::personName() {
  return rng_.pick(kFirstNames) + " " + rng_.pick(kLastNames);
}

std::string CorpusGenerator::number(int lo, int hi) {
  return std::to_string(rng_.range(lo, hi));
}

std::string CorpusGenerator::decimal(int lo, int hi, int places) {
  std::string s = std::to_string(rng_.range(lo, hi)) + ".";
  for (int i = 0; i < places; ++i)
    s += static_cast<char>('0' + rng_.below(10));
  return s;
}

std::string CorpusGenerator::withCommas(int64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  const int n = static_cast<int>(digits.size());
  for (int i = 0; i < n; ++i) {
    if (i > 0 && (n - i) % 3 == 0) out += ',';
    out += digits[static_cast<size_t>(i)];
  }
  return out;
}

std::string CorpusGenerator::date() {
  const int year = rng_.range(1990, 2024);
  const int month = rng_.range(1, 12);
  const int day = rng_.range(1, 28);
  switch (rng_.below(4)) {
    case 0:
      return kMonths[static_cast<size_t>(month - 1)] + " " + std::to_string(day) + ", " +
             std::to_string(year);
    case 1:
      return std::to_string(year) + "-" + twoDigits(month) + "-" + twoDigits(day);
    case 2:
      return std::to_string(day) + " " + kShortMonths[static_cast<size_t>(month - 1)] + " " +
             std::to_string(year);
    default:
      return twoDigits(day) + "/" + twoDigits(month) + "/" + std::to_string(year);
  }
}

std::string CorpusGenerator::slot(const std::string& name, int topic) {
  const Topic* t = topic >= 0 ? &topics()[static_cast<size_t>(topic)] : nullptr;
  if (t) {
    if (name == "noun" || name == "noun2") return rng_.pick(t->nouns);
    if (name == "adj") return rng_.pick(t->adjectives);
    if (name == "verb") return rng_.pick(t->verbs);
    if (name == "place") return rng_.pick(t->places);
  }
  if (name == "name") return personName();
  if (name == "first") return rng_.pick(kFirstNames);
  if (name == "last") return rng_.pick(kLastNames);
  if (name == "city" || name == "city2") return rng_.pick(kCities);
  if (name == "team" || name == "team2") return rng_.pick(kTeams);
  if (name == "company") return rng_.pick(kCompanies);
  if (name == "ticker") return rng_.pick(kTickers);
  if (name == "day") return rng_.pick(kDays);
  if (name == "month") return rng_.pick(kMonths);
  if (name == "date") return date();
  if (name == "year") return number(1950, 2024);
  if (name == "n" || name == "n2") return number(2, 60);
  if (name == "ord") return ordinal(rng_.range(1, 90));
  if (name == "big") return withCommas(rng_.range(1000, 95000));
  if (name == "dec") return decimal(0, 40, rng_.range(1, 2));
  if (name == "pct") return decimal(0, 30, 1) + "%";
  if (name == "score") return number(0, 5) + "-" + number(0, 4);
  if (name == "price") {
    const std::string amount = number(1, 400) + "." + twoDigits(rng_.range(0, 99));
    return rng_.chance(0.8) ? "$" + amount : "€" + amount;
  }
  if (name == "temp") {
    return rng_.chance(0.7) ? number(-10, 38) + "°C" : number(20, 100) + "°F";
  }
  if (name == "time") {
    return rng_.chance(0.5) ? number(1, 12) + ":" + twoDigits(rng_.range(0, 11) * 5) +
                                  (rng_.chance(0.5) ? " am" : " pm")
                            : twoDigits(rng_.range(0, 23)) + ":" + twoDigits(rng_.range(0, 59));
  }
  throw std::logic_error("CorpusGenerator: unknown slot {" + name + "}");
}

std::string CorpusGenerator::fill(const std::string& pattern, int topic) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '{') {
      const size_t close = pattern.find('}', i);
      out += slot(pattern.substr(i + 1, close - i - 1), topic);
      i = close;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

std::string CorpusGenerator::sentence(int topic) {
  const Topic& t = topics()[static_cast<size_t>(topic)];
  std::string s = fill(rng_.pick(t.patterns), topic);
  // Occasional connectives and quotes vary how sentences start.
  if (rng_.chance(0.12)) {
    // "Later, the storm..." but "Later, Maria...": only common sentence openers lose their
    // capital after a connective.
    static const Words kOpeners = {
        "The",          "A",     "Each",   "Our",      "There",   "Tickets",     "Fans",
        "Temperatures", "Winds", "Shares", "Analysts", "Doctors", "Forecasters", "Residents",
        "Over",         "In",    "Add",    "Keep",     "Drink",   "She",         "We"};
    const std::string firstWord = s.substr(0, s.find(' '));
    if (std::find(kOpeners.begin(), kOpeners.end(), firstWord) != kOpeners.end()) {
      s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
    }
    s = rng_.pick(kConnectives) + s;
  } else if (rng_.chance(0.08) && s.back() == '.') {
    s = "\"" + s.substr(0, s.size() - 1) + ",\" " + (rng_.chance(0.5) ? "said " : "wrote ") +
        personName() + ".";
  }
  return capitalized(s);
}

std::string CorpusGenerator::paragraph(int topic, int sentences) {
  std::string p;
  for (int i = 0; i < sentences; ++i) {
    if (i > 0) p += ' ';
    p += sentence(topic);
  }
  return p + "\n";
}

std::string CorpusGenerator::bulletList(int topic) {
  const Topic& t = topics()[static_cast<size_t>(topic)];
  const int items = rng_.range(3, 6);
  const bool numbered = rng_.chance(0.4);
  const std::string bullet = rng_.chance(0.5) ? "- " : "* ";
  std::string out;
  for (int i = 0; i < items; ++i) {
    out += numbered ? std::to_string(i + 1) + ". " : bullet;
    switch (rng_.below(3)) {
      case 0:
        out += capitalized(rng_.pick(t.adjectives) + " " + rng_.pick(t.nouns));
        break;
      case 1:
        out += capitalized(rng_.pick(t.nouns)) + ": " + number(1, 500);
        break;
      default:
        out += capitalized(rng_.pick(t.verbs) + " " + rng_.pick(t.places));
        break;
    }
    out += '\n';
  }
  return out;
}

std::string CorpusGenerator::article(int topic) {
  const Topic& t = topics()[static_cast<size_t>(topic)];
  std::string doc = capitalized(fill(rng_.pick(t.titles), topic)) + "\n";
  if (rng_.chance(0.5)) doc += "By " + personName() + ", " + date() + "\n";
  doc += "\n";
  const int paragraphs = rng_.chance(0.25) ? 1 : rng_.range(2, 6);
  for (int i = 0; i < paragraphs; ++i) {
    if (i > 0) doc += "\n";
    doc += paragraph(topic, rng_.range(1, 6));
    if (rng_.chance(0.15)) doc += "\n" + bulletList(topic);
  }
  return doc;
}

std::string CorpusGenerator::recipe() {
  const int cooking = 1;
  const Topic& t = topics()[cooking];
  std::string doc = capitalized(fill(rng_.pick(t.titles), cooking)) + "\n\n";
  doc += "Serves " + number(2, 8) + ". Ready in " + number(15, 90) + " minutes.\n\nIngredients:\n";
  const int n = rng_.range(3, 8);
  for (int i = 0; i < n; ++i) {
    doc += "- " + number(1, 500) + " " + rng_.pick(kUnits) + " " + rng_.pick(t.nouns) + "\n";
  }
  doc += "\nSteps:\n";
  const int steps = rng_.range(2, 6);
  for (int i = 0; i < steps; ++i) {
    doc += std::to_string(i + 1) + ". " + capitalized(fill(rng_.pick(t.patterns), cooking)) + "\n";
  }
  return doc;
}

std::string CorpusGenerator::forecast() {
  std::string doc = "Forecast for " + rng_.pick(kCities) + ", week of " + date() + "\n\n";
  const int start = static_cast<int>(rng_.below(7));
  const int days = rng_.range(3, 7);
  const Topic& t = topics()[0];
  for (int i = 0; i < days; ++i) {
    const int low = rng_.range(-8, 20);
    doc += kDays[static_cast<size_t>((start + i) % 7)] + ": " +
           capitalized(rng_.pick(t.adjectives)) + ", high " +
           std::to_string(low + rng_.range(3, 12)) + "°C, low " + std::to_string(low) + "°C, " +
           rng_.pick(t.nouns) + " " + std::to_string(rng_.range(0, 100)) + "%\n";
  }
  if (rng_.chance(0.6)) doc += "\n" + paragraph(0, rng_.range(1, 3));
  return doc;
}

std::string CorpusGenerator::marketReport() {
  const int finance = 3;
  std::string doc = "Market close, " + date() + "\n\n";
  const int rows = rng_.range(3, 7);
  for (int i = 0; i < rows; ++i) {
    const bool up = rng_.chance(0.5);
    doc += rng_.pick(kTickers) + "  " + number(5, 900) + "." + twoDigits(rng_.range(0, 99)) + "  " +
           (up ? "+" : "-") + decimal(0, 9, 2) + "%\n";
  }
  doc += "\n" + paragraph(finance, rng_.range(2, 5));
  return doc;
}

std::string CorpusGenerator::matchReport() {
  const int sports = 2;
  std::string doc = fill("{team} {score} {team2}", sports) + " (" + date() + ")\n\n";
  doc += paragraph(sports, rng_.range(2, 6));
  if (rng_.chance(0.5)) {
    doc += "\nScorers:\n";
    const int n = rng_.range(1, 4);
    for (int i = 0; i < n; ++i) {
      doc += "- " + personName() + " " + ordinal(rng_.range(1, 90)) + "'\n";
    }
  }
  return doc;
}

std::string CorpusGenerator::letter() {
  const int topic = static_cast<int>(rng_.below(topics().size()));
  std::string doc =
      rng_.pick(kCities) + ", " + date() + "\n\nDear " + rng_.pick(kFirstNames) + ",\n\n";
  doc += paragraph(topic, rng_.range(2, 5));
  doc += "\n" + std::string(rng_.chance(0.5) ? "Best regards," : "Yours sincerely,") + "\n" +
         personName() + "\n";
  return doc;
}

std::string CorpusGenerator::questions() {
  const int topic = static_cast<int>(rng_.below(topics().size()));
  const Topic& t = topics()[static_cast<size_t>(topic)];
  std::string doc;
  const int n = rng_.range(2, 5);
  for (int i = 0; i < n; ++i) {
    doc += "Q: What is the best " + rng_.pick(t.adjectives) + " " + rng_.pick(t.nouns) + " in " +
           rng_.pick(kCities) + "?\nA: " + sentence(topic) + "\n\n";
  }
  doc.pop_back();
  return doc;
}

std::string CorpusGenerator::csvTable() {
  std::string doc;
  if (rng_.chance(0.5)) {
    doc += "date,city,temp_c,rain_mm\n";
    const int rows = rng_.range(4, 12);
    for (int i = 0; i < rows; ++i) {
      doc += std::to_string(rng_.range(2015, 2024)) + "-" + twoDigits(rng_.range(1, 12)) + "-" +
             twoDigits(rng_.range(1, 28)) + "," + rng_.pick(kCities) + "," + decimal(-5, 35, 1) +
             "," + number(0, 40) + "\n";
    }
  } else {
    doc += "id,name,team,goals,assists\n";
    const int rows = rng_.range(4, 12);
    for (int i = 0; i < rows; ++i) {
      doc += std::to_string(rng_.range(100, 999)) + "," + personName() + "," + rng_.pick(kTeams) +
             "," + number(0, 30) + "," + number(0, 20) + "\n";
    }
  }
  return doc;
}

std::string CorpusGenerator::pythonSnippet() {
  const std::string verb = rng_.pick(kFuncVerbs);
  const std::string noun = rng_.pick(kFuncNouns);
  const std::string arg = rng_.pick(kVarNames);
  const std::string acc = rng_.pick(kVarNames);
  std::string doc;
  if (rng_.chance(0.4)) doc += "import " + std::string(rng_.chance(0.5) ? "math" : "json") + "\n\n";
  doc += "def " + verb + "_" + noun + "(" + arg + ", limit=" + number(1, 100) + "):\n";
  doc += "    \"\"\"" + capitalized(verb) + " the " + noun + " and return the " + acc + ".\"\"\"\n";
  doc += "    " + acc + " = " + (rng_.chance(0.5) ? "[]" : "0") + "\n";
  doc += "    for i, item in enumerate(" + arg + "):\n";
  doc += "        if item > limit:\n";
  doc += "            continue\n";
  switch (rng_.below(3)) {
    case 0:
      doc += "        " + acc + " += item * " + number(2, 9) + "\n";
      break;
    case 1:
      doc +=
          "        # skip odd positions\n        if i % 2 == 1:\n            " + acc + " += item\n";
      break;
    default:
      doc += "        " + acc + " = max(" + acc + ", item - " + number(1, 50) + ")\n";
      break;
  }
  doc += "    return " + acc + "\n";
  if (rng_.chance(0.6)) {
    doc += "\n\nprint(" + verb + "_" + noun + "([" + number(1, 99) + ", " + number(1, 99) + ", " +
           number(1, 99) + "]))\n";
  }
  return doc;
}

std::string CorpusGenerator::cSnippet() {
  const std::string verb = rng_.pick(kFuncVerbs);
  const std::string noun = rng_.pick(kFuncNouns);
  const std::string arr = rng_.pick(kVarNames);
  std::string doc = "#include <stdio.h>\n\n";
  doc += "int " + verb + "_" + noun + "(const int *" + arr + ", int n) {\n";
  doc += "    int total = 0;\n";
  doc += "    for (int i = 0; i < n; i++) {\n";
  if (rng_.chance(0.5)) {
    doc +=
        "        if (" + arr + "[i] < " + number(0, 50) + ") {\n            continue;\n        }\n";
  }
  doc += "        total += " + arr + "[i]" + (rng_.chance(0.5) ? " * " + number(2, 9) : "") + ";\n";
  doc += "    }\n    return total;\n}\n";
  if (rng_.chance(0.5)) {
    doc += "\nint main(void) {\n    int data[" + number(3, 3) + "] = {" + number(0, 99) + ", " +
           number(0, 99) + ", " + number(0, 99) + "};\n    printf(\"%d\\n\", " + verb + "_" + noun +
           "(data, 3));\n    return 0;\n}\n";
  }
  return doc;
}

}  // namespace sae
