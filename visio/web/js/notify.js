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

// Ask before something that cannot be undone, in the page's <dialog id="confirm-dialog">
// (modal: focus stays in it, Escape cancels). Resolves to true when confirmed.
export function confirmAction(text, okLabel) {
  const dialog = document.getElementById('confirm-dialog');
  if (!dialog?.showModal) return Promise.resolve(window.confirm(text));
  if (dialog.open) dialog.close('cancel');
  document.getElementById('confirm-text').textContent = text;
  document.getElementById('confirm-ok').textContent = okLabel;
  const opener = document.activeElement;
  return new Promise((resolve) => {
    dialog.addEventListener('close', () => {
      if (opener?.isConnected) opener.focus();
      resolve(dialog.returnValue === 'ok');
    }, { once: true });
    dialog.returnValue = '';
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}
