// The choice of background (none, blur, a picture, one's own): a group of radio tiles, on the
// pre-join screen and in a popover of the meeting's controls.
import { h } from './dom.js';
import { t } from './i18n.js';
import { BackgroundError, customPicture, PICTURES, pictureUrl } from './backgrounds.js';

let pickers = 0; // radio group names must be unique in the page

export class BackgroundPicker {
  // container: where the fieldset goes; effect: a BackgroundEffect.
  constructor(container, effect) {
    this.container = container;
    this.effect = effect;
    this.name = `background-${++pickers}`;
    this.error = null;
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    effect.addEventListener('change', () => this.sync(), { signal });
    window.addEventListener('visio:language', () => this.render(), { signal });
    this.render();
  }

  options() {
    const options = [
      { value: 'none', label: t('background.none'), swatch: 'none' },
      { value: 'blur', label: t('background.blur'), swatch: 'blur' },
      ...PICTURES.map((id) => ({ value: `picture:${id}`, label: t(`background.picture.${id}`), image: pictureUrl(id) })),
    ];
    const custom = customPicture();
    if (custom) options.push({ value: 'custom', label: t('background.custom'), image: custom });
    return options;
  }

  render() {
    const tiles = this.options().map((option) => h('label.background-option', { title: option.label },
      h('input', { type: 'radio', name: this.name, value: option.value }),
      option.image ? h('img', { src: option.image, alt: '' })
        : h(`span.background-swatch.swatch-${option.swatch}`, { 'aria-hidden': 'true' }),
      h('span.visually-hidden', {}, option.label)));
    this.file = h('input.visually-hidden', {
      type: 'file', accept: 'image/png,image/jpeg,image/webp,image/gif',
      onchange: () => this.upload(),
    });
    this.status = h('p.hint.background-status', { role: 'status' });
    this.fieldset = h('fieldset.background-picker', { onchange: (ev) => this.picked(ev) },
      h('legend', {}, t('background.label')),
      h('div.background-options', {}, tiles),
      h('label.button.small.background-upload', {}, this.file, t('background.upload')),
      this.status);
    this.container.replaceChildren(this.fieldset);
    this.sync();
  }

  // Reflect the effect's state: the checked tile, what is disabled and why.
  sync() {
    const { effect } = this;
    for (const input of this.fieldset.querySelectorAll(`input[name="${this.name}"]`)) {
      input.checked = input.value === effect.choice;
      input.disabled = !!effect.unavailable && input.value !== 'none';
    }
    this.file.disabled = !!effect.unavailable;
    this.fieldset.setAttribute('aria-busy', String(effect.loading));
    this.fieldset.dataset.state = effect.unavailable ? 'unavailable' : effect.loading ? 'loading' : 'ready';
    let message = '';
    if (effect.unavailable) message = t('background.unavailable', { reason: t(`background.unavailable.${effect.unavailable}`) });
    else if (this.error) message = t(`background.error.${this.error}`);
    else if (effect.loading) message = t('background.loading');
    this.status.textContent = message;
  }

  picked(event) {
    if (event.target.name !== this.name) return;
    this.error = null;
    this.effect.choose(event.target.value);
    this.sync();
  }

  async upload() {
    const [file] = this.file.files;
    this.file.value = '';
    if (!file) return;
    this.error = null;
    try {
      await this.effect.setCustomPicture(file);
      this.render(); // the new tile
    } catch (err) {
      this.error = err instanceof BackgroundError ? err.code : 'type';
      this.sync();
    }
  }

  destroy() {
    this.listeners.abort();
    this.container.replaceChildren();
  }
}

// In the meeting: a control button that opens the picker in a popover.
export class BackgroundMenu {
  constructor({ button, popover, effect }) {
    this.button = button;
    this.popover = popover;
    this.picker = new BackgroundPicker(popover, effect);
    this.listeners = new AbortController();
    const signal = this.listeners.signal;
    button.addEventListener('click', () => this.toggle(), { signal });
    document.addEventListener('click', (ev) => {
      if (!popover.hidden && !popover.contains(ev.target) && !button.contains(ev.target)) this.toggle(false);
    }, { signal });
    popover.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape') return;
      ev.stopPropagation();
      this.toggle(false);
      button.focus();
    }, { signal });
  }

  toggle(open = this.popover.hidden) {
    this.popover.hidden = !open;
    this.button.setAttribute('aria-expanded', String(open));
    if (open) this.popover.querySelector('input:checked, input:not([disabled])')?.focus();
  }

  destroy() {
    this.listeners.abort();
    this.picker.destroy();
    this.popover.hidden = true;
    this.button.setAttribute('aria-expanded', 'false');
  }
}
