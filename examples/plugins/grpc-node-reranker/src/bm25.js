'use strict';
// Okapi BM25 over the documents of one rerank call (the same formula as the Python
// example examples/plugins/python-bm25-reranker):
//
//   idf(t)   = ln(1 + (N - n(t) + 0.5) / (n(t) + 0.5))
//   score(d) = sum over distinct query terms t of
//              idf(t) * f(t, d) * (k1 + 1) / (f(t, d) + k1 * (1 - b + b * |d| / avgdl))
//
// N documents, n(t) of them containing t, f(t, d) the count of t in d, |d| the length
// of d in tokens. Tokens are lower-cased runs of Unicode letters, numbers and `_`
// (what Python's `\w+` matches).

const TOKEN = /[\p{L}\p{N}_]+/gu;

function tokenize(text) {
  return text.toLowerCase().match(TOKEN) || [];
}

function counts(tokens) {
  const map = new Map();
  for (const token of tokens) map.set(token, (map.get(token) || 0) + 1);
  return map;
}

function bm25Scores(query, documents, k1 = 1.5, b = 0.75) {
  const docs = documents.map((d) => counts(tokenize(d)));
  const lengths = documents.map((d) => tokenize(d).length);
  const n = docs.length;
  const scores = new Array(n).fill(0);
  const avgdl = n ? lengths.reduce((a, x) => a + x, 0) / n : 0;
  if (avgdl === 0) return scores;
  for (const term of new Set(tokenize(query))) {
    const containing = docs.filter((c) => c.has(term)).length;
    if (!containing) continue;
    const idf = Math.log(1 + (n - containing + 0.5) / (containing + 0.5));
    docs.forEach((c, i) => {
      const tf = c.get(term) || 0;
      if (tf) {
        const norm = k1 * (1 - b + (b * lengths[i]) / avgdl);
        scores[i] += (idf * tf * (k1 + 1)) / (tf + norm);
      }
    });
  }
  return scores;
}

module.exports = { tokenize, bm25Scores };
