// Short visible notices (toasts, read by screen readers through their live region) and
// silent announcements for screen readers only.

const TOAST_MS = 4000;
const MAX_TOASTS = 4;

export function toast(text, { timeout = TOAST_MS } = {}) {
  const region = document.getElementById('toasts');
  if (!region) return;
  const item = document.createElement('div');
  item.className = 'toast';
  item.textContent = text;
  region.append(item);
  while (region.children.length > MAX_TOASTS) region.firstElementChild.remove();
  setTimeout(() => item.remove(), timeout);
}

export function announce(text) {
  const region = document.getElementById('announcer');
  if (!region) return;
  // Clearing first makes a repeated message be read again.
  region.textContent = '';
  setTimeout(() => { region.textContent = text; }, 50);
}

export function truncate(text, max = 80) {
  const chars = [...String(text)];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : chars.join('');
}
