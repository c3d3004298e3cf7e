// A worker's timer for backgrounds.js: a hidden tab slows the page's own timers to once a
// second, not a worker's.
self.onmessage = ({ data: { id, ms } }) => setTimeout(() => self.postMessage(id), ms);
