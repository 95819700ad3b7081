// Roleplay text as SillyTavern users expect it: markdown (`*actions*` in italics), quoted speech
// highlighted, raw HTML shown as text, and DOMPurify over the result before it touches the page.

const { Marked } = window.marked;
const { DOMPurify } = window;

const escapeHtml = (text) =>
  text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

// "Quoted speech" (straight or curly quotes, within a line) as a highlighted span.
const speech = {
  name: "speech",
  level: "inline",
  start(src) {
    const index = src.search(/["“]/);
    return index < 0 ? undefined : index;
  },
  tokenizer(src) {
    const match = /^(?:"[^"\n]+"|“[^”\n]+”)/.exec(src);
    if (!match) return undefined;
    const [open, inner, close] = [match[0][0], match[0].slice(1, -1), match[0].at(-1)];
    return { type: "speech", raw: match[0], open, close, tokens: this.lexer.inlineTokens(inner) };
  },
  renderer(token) {
    const inner = this.parser.parseInline(token.tokens);
    return `<span class="speech">${escapeHtml(token.open)}${inner}${escapeHtml(token.close)}</span>`;
  },
};

const markdown = new Marked({ gfm: true, breaks: true });
markdown.use({
  extensions: [speech],
  renderer: {
    // Markup someone typed (or a card carries) is text to read, never elements to run.
    html(token) {
      return escapeHtml(token.text);
    },
    // Pictures would load from anywhere: a link instead, followed only on purpose.
    image(token) {
      return `<a href="${escapeHtml(token.href)}" rel="noopener noreferrer" target="_blank">${escapeHtml(token.text || token.href)}</a>`;
    },
  },
});

export function renderRoleplay(element, text) {
  element.innerHTML = DOMPurify.sanitize(markdown.parse(text), { USE_PROFILES: { html: true } });
}

// Re-renders at most once a frame while tokens stream in.
export function streamRenderer(element) {
  let text = "";
  let scheduled = false;
  return {
    set(value) {
      text = value;
      if (scheduled) return;
      scheduled = true;
      requestAnimationFrame(() => {
        scheduled = false;
        renderRoleplay(element, text);
      });
    },
    get text() {
      return text;
    },
  };
}
