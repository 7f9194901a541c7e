// Joins token pieces (raw bytes) into text without splitting a multi-byte UTF-8 character: the bytes
// of an incomplete character at the end are held until a later piece completes it. A held tail
// that can never complete (a stray continuation byte, or more than 3 held bytes) is released as is
// and becomes U+FFFD when turned into a JavaScript string.
#pragma once

#include <string>

class Utf8Stream {
 public:
  // Appends `piece` and returns the text that is complete now.
  std::string push(const char* piece, size_t length) {
    held_.append(piece, length);
    const size_t keep = incompleteTail(held_);
    std::string out = held_.substr(0, held_.size() - keep);
    held_.erase(0, held_.size() - keep);
    return out;
  }

  void reset() { held_.clear(); }

 private:
  // Length of the trailing bytes that start a character not yet complete (0 to 3).
  static size_t incompleteTail(const std::string& s) {
    const size_t n = s.size();
    for (size_t back = 1; back <= 3 && back <= n; back++) {
      const unsigned char c = (unsigned char)s[n - back];
      if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
      size_t need = 0;
      if ((c & 0xE0) == 0xC0) need = 2;
      else if ((c & 0xF0) == 0xE0) need = 3;
      else if ((c & 0xF8) == 0xF0) need = 4;
      return need > back ? back : 0;
    }
    return 0;
  }

  std::string held_;
};
