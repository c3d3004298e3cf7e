// French and English strings. Static text is tagged in the HTML with data-i18n (text),
// data-i18n-label (aria-label), data-i18n-title and data-i18n-placeholder; code calls t().

const STORAGE_KEY = 'visio.lang';
export const LANGUAGES = { en: 'English', fr: 'Français' };

const STRINGS = {
  en: {
    'app.name': 'Visio',
    'app.loading': 'Loading…',
    'lang.label': 'Language',
    'home.title': 'Video meetings for everyone',
    'home.tagline': 'Secure meetings, hosted by your organisation. Nothing to install.',
    'home.new': 'New meeting',
    'home.creating': 'Creating…',
    'home.code.label': 'Meeting code or link',
    'home.code.placeholder': 'Enter a code or link',
    'home.join': 'Join',
    'home.or': 'or',
    'home.error.create': 'The meeting could not be created. Please try again.',
    'home.error.empty': 'Enter a meeting code or link.',
    'home.error.invalid': 'This is not a valid meeting code or link.',
    'home.error.notfound': 'No meeting was found with this code.',
    'prejoin.title': 'Ready to join?',
    'prejoin.name.label': 'Your name',
    'prejoin.name.placeholder': 'Enter your name',
    'prejoin.name.required': 'Enter your name to join.',
    'prejoin.camera': 'Camera',
    'prejoin.microphone': 'Microphone',
    'prejoin.speaker': 'Speaker',
    'prejoin.join': 'Join now',
    'prejoin.joining': 'Joining…',
    'prejoin.cancel': 'Cancel',
    'prejoin.alone': 'No one else is here yet',
    'prejoin.count.one': '{n} person is in this meeting',
    'prejoin.count.other': '{n} people are in this meeting',
    'prejoin.starting': 'Starting camera…',
    'prejoin.camera.off': 'Camera is off',
    'prejoin.camera.denied': 'Camera access was refused',
    'prejoin.camera.none': 'No camera found',
    'prejoin.camera.busy': 'The camera is used by another application',
    'prejoin.mic.denied': 'Microphone access was refused',
    'prejoin.mic.none': 'No microphone found',
    'prejoin.mic.busy': 'The microphone is used by another application',
    'prejoin.devices.hint': 'You can still join; others will not see or hear you until you allow access in your browser.',
    'prejoin.level': 'Microphone level',
    'prejoin.speaker.test': 'Test speaker',
    'device.default': 'Default',
    'device.camera': 'Camera {n}',
    'device.microphone': 'Microphone {n}',
    'device.speaker': 'Speaker {n}',
    'notfound.title': 'This meeting does not exist',
    'notfound.text': 'Check the link or the code, or start a new meeting.',
    'notfound.home': 'Back to home',
    'error.room_full': 'This meeting is full.',
    'error.generic': 'Something went wrong. Please try again.',
    'error.network': 'The server cannot be reached. Check your connection.',
    'error.media': 'The media server is not available yet. Retrying…',
    'error.screen': 'Screen sharing could not start.',
    'error.camera': 'The camera could not start.',
    'error.microphone': 'The microphone could not start.',
    'controls.label': 'Meeting controls',
    'controls.mic.off': 'Turn off microphone',
    'controls.mic.on': 'Turn on microphone',
    'controls.cam.off': 'Turn off camera',
    'controls.cam.on': 'Turn on camera',
    'controls.screen.start': 'Present your screen',
    'controls.screen.stop': 'Stop presenting',
    'controls.hand.raise': 'Raise hand',
    'controls.hand.lower': 'Lower hand',
    'controls.reactions': 'Send a reaction',
    'controls.chat': 'Chat with everyone',
    'controls.participants': 'Show everyone',
    'controls.leave': 'Leave call',
    'controls.shortcuts': 'Shortcuts: Ctrl+D microphone, Ctrl+E camera',
    'reaction.👍': 'Thumbs up',
    'reaction.👏': 'Clapping',
    'reaction.😂': 'Laughing',
    'reaction.❤️': 'Heart',
    'reaction.🎉': 'Celebration',
    'reaction.😮': 'Surprised',
    'chat.title': 'In-call messages',
    'chat.placeholder': 'Send a message to everyone',
    'chat.input.label': 'Message',
    'chat.send': 'Send',
    'chat.empty': 'No messages yet. Messages are visible to everyone in the meeting.',
    'chat.you': 'You',
    'chat.pending': 'Not sent yet',
    'chat.unread': 'New messages',
    'participants.title': 'People',
    'participants.count.one': '{n} person',
    'participants.count.other': '{n} people',
    'participants.you': '{name} (you)',
    'panel.close': 'Close',
    'tile.you': 'You',
    'tile.presenting': '{name} is presenting',
    'tile.you.presenting': 'You are presenting',
    'tile.muted': 'Microphone off',
    'tile.camera.off': 'Camera off',
    'tile.hand': 'Hand raised',
    'tile.reconnecting': 'Reconnecting…',
    'tile.speaking': 'Speaking',
    'notify.joined': '{name} joined',
    'notify.left': '{name} left',
    'notify.hand': '{name} raised their hand',
    'notify.screen': '{name} is presenting',
    'notify.chat': '{name}: {text}',
    'notify.reaction': '{name}: {emoji}',
    'banner.reconnecting': 'Connection lost. Reconnecting…',
    'banner.connecting': 'Connecting…',
    'banner.offline': 'You are offline. Waiting for the network…',
    'banner.reconnected': 'Reconnected',
    'audio.blocked': 'Click to turn on the sound',
    'left.title': 'You left the meeting',
    'left.rejoin': 'Rejoin',
    'left.home': 'Return to home screen',
    'left.replaced': 'You joined this meeting from another window or device.',
    'left.server_shutdown': 'The server was stopped. You can try to rejoin in a moment.',
    'left.room_not_found': 'This meeting has ended.',
    'left.room_full': 'This meeting is full.',
    'meeting.people.one': '{n} participant',
    'meeting.people.other': '{n} participants',
  },
  fr: {
    'app.name': 'Visio',
    'app.loading': 'Chargement…',
    'lang.label': 'Langue',
    'home.title': 'La visioconférence pour tous',
    'home.tagline': 'Des réunions sécurisées, hébergées par votre organisation. Rien à installer.',
    'home.new': 'Nouvelle réunion',
    'home.creating': 'Création…',
    'home.code.label': 'Code ou lien de la réunion',
    'home.code.placeholder': 'Saisissez un code ou un lien',
    'home.join': 'Participer',
    'home.or': 'ou',
    'home.error.create': 'La réunion n’a pas pu être créée. Veuillez réessayer.',
    'home.error.empty': 'Saisissez un code ou un lien de réunion.',
    'home.error.invalid': 'Ce code ou ce lien de réunion n’est pas valide.',
    'home.error.notfound': 'Aucune réunion ne correspond à ce code.',
    'prejoin.title': 'Prêt à participer\u00a0?',
    'prejoin.name.label': 'Votre nom',
    'prejoin.name.placeholder': 'Saisissez votre nom',
    'prejoin.name.required': 'Saisissez votre nom pour participer.',
    'prejoin.camera': 'Caméra',
    'prejoin.microphone': 'Micro',
    'prejoin.speaker': 'Haut-parleur',
    'prejoin.join': 'Participer',
    'prejoin.joining': 'Connexion…',
    'prejoin.cancel': 'Annuler',
    'prejoin.alone': 'Personne d’autre n’est encore là',
    'prejoin.count.one': '{n}\u00a0personne participe à cette réunion',
    'prejoin.count.other': '{n}\u00a0personnes participent à cette réunion',
    'prejoin.starting': 'Démarrage de la caméra…',
    'prejoin.camera.off': 'La caméra est désactivée',
    'prejoin.camera.denied': 'L’accès à la caméra a été refusé',
    'prejoin.camera.none': 'Aucune caméra détectée',
    'prejoin.camera.busy': 'La caméra est utilisée par une autre application',
    'prejoin.mic.denied': 'L’accès au micro a été refusé',
    'prejoin.mic.none': 'Aucun micro détecté',
    'prejoin.mic.busy': 'Le micro est utilisé par une autre application',
    'prejoin.devices.hint': 'Vous pouvez quand même participer\u00a0; les autres ne vous verront et ne vous entendront pas tant que vous n’aurez pas autorisé l’accès dans votre navigateur.',
    'prejoin.level': 'Niveau du micro',
    'prejoin.speaker.test': 'Tester le haut-parleur',
    'device.default': 'Par défaut',
    'device.camera': 'Caméra {n}',
    'device.microphone': 'Micro {n}',
    'device.speaker': 'Haut-parleur {n}',
    'notfound.title': 'Cette réunion n’existe pas',
    'notfound.text': 'Vérifiez le lien ou le code, ou démarrez une nouvelle réunion.',
    'notfound.home': 'Retour à l’accueil',
    'error.room_full': 'Cette réunion est complète.',
    'error.generic': 'Un problème est survenu. Veuillez réessayer.',
    'error.network': 'Le serveur est injoignable. Vérifiez votre connexion.',
    'error.media': 'Le serveur multimédia n’est pas encore disponible. Nouvelle tentative…',
    'error.screen': 'Le partage d’écran n’a pas pu démarrer.',
    'error.camera': 'La caméra n’a pas pu démarrer.',
    'error.microphone': 'Le micro n’a pas pu démarrer.',
    'controls.label': 'Commandes de la réunion',
    'controls.mic.off': 'Désactiver le micro',
    'controls.mic.on': 'Activer le micro',
    'controls.cam.off': 'Désactiver la caméra',
    'controls.cam.on': 'Activer la caméra',
    'controls.screen.start': 'Présenter votre écran',
    'controls.screen.stop': 'Arrêter la présentation',
    'controls.hand.raise': 'Lever la main',
    'controls.hand.lower': 'Baisser la main',
    'controls.reactions': 'Envoyer une réaction',
    'controls.chat': 'Discuter avec les participants',
    'controls.participants': 'Afficher les participants',
    'controls.leave': 'Quitter l’appel',
    'controls.shortcuts': 'Raccourcis\u00a0: Ctrl+D micro, Ctrl+E caméra',
    'reaction.👍': 'Pouce levé',
    'reaction.👏': 'Applaudissements',
    'reaction.😂': 'Rire',
    'reaction.❤️': 'Cœur',
    'reaction.🎉': 'Fête',
    'reaction.😮': 'Surprise',
    'chat.title': 'Messages de l’appel',
    'chat.placeholder': 'Envoyer un message à tous',
    'chat.input.label': 'Message',
    'chat.send': 'Envoyer',
    'chat.empty': 'Aucun message pour l’instant. Les messages sont visibles par tous les participants.',
    'chat.you': 'Vous',
    'chat.pending': 'Pas encore envoyé',
    'chat.unread': 'Nouveaux messages',
    'participants.title': 'Participants',
    'participants.count.one': '{n}\u00a0personne',
    'participants.count.other': '{n}\u00a0personnes',
    'participants.you': '{name} (vous)',
    'panel.close': 'Fermer',
    'tile.you': 'Vous',
    'tile.presenting': '{name} présente',
    'tile.you.presenting': 'Vous présentez',
    'tile.muted': 'Micro désactivé',
    'tile.camera.off': 'Caméra désactivée',
    'tile.hand': 'Main levée',
    'tile.reconnecting': 'Reconnexion…',
    'tile.speaking': 'Parle',
    'notify.joined': '{name} a rejoint la réunion',
    'notify.left': '{name} a quitté la réunion',
    'notify.hand': '{name} lève la main',
    'notify.screen': '{name} présente son écran',
    'notify.chat': '{name}\u00a0: {text}',
    'notify.reaction': '{name}\u00a0: {emoji}',
    'banner.reconnecting': 'Connexion perdue. Reconnexion en cours…',
    'banner.connecting': 'Connexion…',
    'banner.offline': 'Vous êtes hors ligne. En attente du réseau…',
    'banner.reconnected': 'Reconnecté',
    'audio.blocked': 'Cliquez pour activer le son',
    'left.title': 'Vous avez quitté la réunion',
    'left.rejoin': 'Revenir dans la réunion',
    'left.home': 'Revenir à l’écran d’accueil',
    'left.replaced': 'Vous avez rejoint cette réunion depuis une autre fenêtre ou un autre appareil.',
    'left.server_shutdown': 'Le serveur a été arrêté. Vous pourrez réessayer dans un instant.',
    'left.room_not_found': 'Cette réunion est terminée.',
    'left.room_full': 'Cette réunion est complète.',
    'meeting.people.one': '{n}\u00a0participant',
    'meeting.people.other': '{n}\u00a0participants',
  },
};

let current = pickLanguage();

function pickLanguage() {
  let stored = null;
  try {
    stored = localStorage.getItem(STORAGE_KEY);
  } catch { /* storage disabled */ }
  if (stored && STRINGS[stored]) return stored;
  const preferred = navigator.languages?.length ? navigator.languages : [navigator.language];
  for (const tag of preferred) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (STRINGS[base]) return base;
  }
  return 'en';
}

export function language() {
  return current;
}

export function t(key, vars = {}) {
  const text = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}

// Plural forms: keys end with .one / .other (Intl.PluralRules categories).
export function tn(key, n, vars = {}) {
  const category = new Intl.PluralRules(current).select(n);
  const full = STRINGS[current][`${key}.${category}`] ? `${key}.${category}` : `${key}.other`;
  return t(full, { n, ...vars });
}

const ATTRIBUTES = [
  ['data-i18n-label', 'aria-label'],
  ['data-i18n-title', 'title'],
  ['data-i18n-placeholder', 'placeholder'],
];

export function translate(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const [source, target] of ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[${source}]`)) el.setAttribute(target, t(el.getAttribute(source)));
  }
}

export function setLanguage(lang) {
  if (!STRINGS[lang]) return;
  current = lang;
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch { /* storage disabled */ }
  applyLanguage();
  window.dispatchEvent(new CustomEvent('visio:language', { detail: { lang } }));
}

export function applyLanguage() {
  document.documentElement.lang = current;
  translate(document);
}

// Fill every <select data-language-picker> and keep it in sync.
export function bindLanguagePickers(root = document) {
  for (const select of root.querySelectorAll('select[data-language-picker]')) {
    select.replaceChildren(...Object.entries(LANGUAGES).map(([code, label]) => {
      const option = new Option(label, code, false, code === current);
      option.lang = code;
      return option;
    }));
    select.addEventListener('change', () => setLanguage(select.value));
  }
  window.addEventListener('visio:language', () => {
    for (const select of root.querySelectorAll('select[data-language-picker]')) select.value = current;
  });
}
