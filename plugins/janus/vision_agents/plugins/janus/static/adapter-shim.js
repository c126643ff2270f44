// janus.js reads the browser's name and version from webrtc-adapter's `adapter.browserDetails`
// and nothing else from it here (current browsers need no shims); this stands in for it.
(function () {
  const ua = navigator.userAgent;
  const pick = (re) => { const m = ua.match(re); return m ? parseInt(m[1], 10) : null; };
  let details = { browser: "chrome", version: pick(/Chrom(?:e|ium)\/(\d+)/) };
  if (/Firefox\//.test(ua)) details = { browser: "firefox", version: pick(/Firefox\/(\d+)/) };
  else if (/Safari\//.test(ua) && !/Chrom/.test(ua)) details = { browser: "safari", version: pick(/Version\/(\d+)/) };
  window.adapter = { browserDetails: details };
})();
