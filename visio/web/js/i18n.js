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
    'account.signin': 'Sign in',
    'account.signout': 'Sign out',
    'account.signedin': 'Signed in as {name}',
    'account.signout.error': 'You could not be signed out. Please try again.',
    'home.signin.required': 'You must sign in to create a meeting. You can still join one with its code or link.',
    'home.error.signin': 'Sign in to create a meeting.',
    'home.rooms.title': 'My rooms',
    'home.rooms.empty': 'You have no rooms yet. The meetings you create appear here.',
    'home.rooms.error': 'Your rooms could not be loaded.',
    'home.rooms.live.one': '{n} person in the meeting now',
    'home.rooms.live.other': '{n} people in the meeting now',
    'access.label': 'Who can join',
    'access.public': 'Anyone with the link enters.',
    'access.trusted': 'Signed-in people enter; guests wait to be let in.',
    'access.restricted': 'Members enter; everyone else waits to be let in.',
    'access.public.short': 'Anyone with the link',
    'access.trusted.short': 'Signed-in people',
    'access.restricted.short': 'Members only',
    'access.changed': 'Who can join: {access}',
    'access.error': 'Who can join could not be changed. Please try again.',
    'role.owner': 'Host',
    'role.admin': 'Co-host',
    'role.member': 'Member',
    'role.guest': 'Guest',
    'prejoin.guest': 'You will join as a guest.',
    'prejoin.guest.wait': 'You will join as a guest: someone in the meeting will have to let you in.',
    'prejoin.ask': 'Ask to join',
    'lobby.title': 'Asking to join…',
    'lobby.text': 'You will enter as soon as someone in the meeting lets you in.',
    'lobby.reason.trusted': 'This meeting is for signed-in people. As a guest, you wait for someone in the meeting to let you in.',
    'lobby.reason.restricted': 'This meeting is for its members only. You wait for a host to let you in.',
    'lobby.reason.locked': 'The meeting is locked. You wait for a host to let you in.',
    'lobby.reason.removed': 'You were removed from this meeting earlier. You wait for a host to let you in again.',
    'lobby.again': 'The meeting was interrupted and has restarted. You wait to be let in again.',
    'lobby.expires': 'If nobody answers within {duration}, your request ends.',
    'lobby.reconnecting': 'Connection lost. Reconnecting… You will be back in the waiting list.',
    'lobby.cancel': 'Cancel',
    'lobby.signin': 'Sign in to enter directly',
    'duration.seconds.one': '{n} second',
    'duration.seconds.other': '{n} seconds',
    'duration.minutes.one': '{n} minute',
    'duration.minutes.other': '{n} minutes',
    'controls.lobby': 'Waiting to join',
    'lobby.panel.title': 'Waiting to join',
    'lobby.panel.empty': 'Nobody is waiting.',
    'lobby.waiting.one': '{n} person waiting',
    'lobby.waiting.other': '{n} people waiting',
    'lobby.admit': 'Admit',
    'lobby.deny': 'Deny',
    'lobby.admit.name': 'Admit {name}',
    'lobby.deny.name': 'Deny entry to {name}',
    'lobby.admit.all': 'Admit all',
    'lobby.deny.all': 'Deny all',
    'lobby.notify.one': '{name} is asking to join',
    'lobby.notify.other': '{n} people are asking to join',
    'lobby.view': 'View',
    'host.title': 'Host controls',
    'lock.label': 'Lock meeting',
    'lock.hint': 'While the meeting is locked, everyone but hosts waits to be let in.',
    'room.locked': 'Locked',
    'notify.locked': 'The meeting is locked: newcomers wait to be let in.',
    'notify.unlocked': 'The meeting is unlocked.',
    'moderate.mute': 'Mute {name}',
    'moderate.camera_off': 'Turn off the camera of {name}',
    'moderate.stop_screen': 'Stop the presentation of {name}',
    'moderate.remove': 'Remove {name} from the meeting',
    'moderate.remove.confirm': 'Remove {name} from the meeting? They can only come back if a host lets them in.',
    'moderate.remove.ok': 'Remove',
    'moderate.mute_all': 'Mute everyone',
    'moderate.mute_all.done': 'Everyone but the hosts is muted.',
    'moderate.end': 'End for all',
    'moderate.end.title': 'End the meeting for everyone',
    'moderate.end.confirm': 'End the meeting for everyone? Everyone in it, and everyone waiting, will be disconnected.',
    'moderate.end.ok': 'End meeting',
    'moderate.actions': 'Actions for {name}',
    'moderated.mute': '{name} muted you. Turn your microphone back on when you want to speak.',
    'moderated.camera_off': '{name} turned off your camera.',
    'moderated.stop_screen': '{name} stopped your presentation.',
    'moderated.someone': 'A host',
    'confirm.cancel': 'Cancel',
    'error.forbidden': 'Only hosts can do this.',
    'error.not_found': 'This person is no longer here.',
    'left.title.denied': 'You were not let in',
    'left.denied': 'Someone in the meeting declined your request to join.',
    'left.title.lobby_expired': 'Nobody let you in',
    'left.lobby_expired': 'Nobody answered your request to join in time. You can ask again.',
    'left.title.removed': 'You were removed from the meeting',
    'left.removed': 'A host removed you from this meeting.',
    'left.title.ended': 'The meeting has ended',
    'left.ended': 'The meeting was ended.',
    'left.ended.by': '{name} ended the meeting for all.',
    'left.ended.you': 'You ended the meeting for all.',
    'left.ask': 'Ask to join again',
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
    'account.signin': 'Se connecter',
    'account.signout': 'Se déconnecter',
    'account.signedin': 'Connecté en tant que {name}',
    'account.signout.error': 'La déconnexion a échoué. Veuillez réessayer.',
    'home.signin.required': 'Vous devez vous connecter pour créer une réunion. Vous pouvez toujours en rejoindre une avec son code ou son lien.',
    'home.error.signin': 'Connectez-vous pour créer une réunion.',
    'home.rooms.title': 'Mes salles',
    'home.rooms.empty': 'Vous n’avez pas encore de salle. Les réunions que vous créez apparaissent ici.',
    'home.rooms.error': 'Vos salles n’ont pas pu être chargées.',
    'home.rooms.live.one': '{n}\u00a0personne dans la réunion en ce moment',
    'home.rooms.live.other': '{n}\u00a0personnes dans la réunion en ce moment',
    'access.label': 'Qui peut participer',
    'access.public': 'Toute personne ayant le lien entre.',
    'access.trusted': 'Les personnes connectées entrent\u00a0; les invités attendent qu’on les fasse entrer.',
    'access.restricted': 'Les membres entrent\u00a0; les autres attendent qu’on les fasse entrer.',
    'access.public.short': 'Toute personne ayant le lien',
    'access.trusted.short': 'Personnes connectées',
    'access.restricted.short': 'Membres uniquement',
    'access.changed': 'Qui peut participer\u00a0: {access}',
    'access.error': 'Le choix de qui peut participer n’a pas pu être modifié. Veuillez réessayer.',
    'role.owner': 'Organisateur',
    'role.admin': 'Coorganisateur',
    'role.member': 'Membre',
    'role.guest': 'Invité',
    'prejoin.guest': 'Vous participerez en tant qu’invité.',
    'prejoin.guest.wait': 'Vous participerez en tant qu’invité\u00a0: une personne de la réunion devra vous faire entrer.',
    'prejoin.ask': 'Demander à participer',
    'lobby.title': 'Demande de participation…',
    'lobby.text': 'Vous entrerez dès qu’une personne de la réunion vous aura fait entrer.',
    'lobby.reason.trusted': 'Cette réunion est réservée aux personnes connectées. En tant qu’invité, vous attendez qu’une personne de la réunion vous fasse entrer.',
    'lobby.reason.restricted': 'Cette réunion est réservée à ses membres. Vous attendez qu’un organisateur vous fasse entrer.',
    'lobby.reason.locked': 'La réunion est verrouillée. Vous attendez qu’un organisateur vous fasse entrer.',
    'lobby.reason.removed': 'Vous avez été retiré de cette réunion. Vous attendez qu’un organisateur vous fasse entrer à nouveau.',
    'lobby.again': 'La réunion a été interrompue puis a redémarré. Vous attendez qu’on vous fasse entrer à nouveau.',
    'lobby.expires': 'Sans réponse d’ici {duration}, votre demande prendra fin.',
    'lobby.reconnecting': 'Connexion perdue. Reconnexion en cours… Vous reprendrez votre place dans la liste d’attente.',
    'lobby.cancel': 'Annuler',
    'lobby.signin': 'Se connecter pour entrer directement',
    'duration.seconds.one': '{n}\u00a0seconde',
    'duration.seconds.other': '{n}\u00a0secondes',
    'duration.minutes.one': '{n}\u00a0minute',
    'duration.minutes.other': '{n}\u00a0minutes',
    'controls.lobby': 'En attente d’entrer',
    'lobby.panel.title': 'En attente d’entrer',
    'lobby.panel.empty': 'Personne n’attend.',
    'lobby.waiting.one': '{n}\u00a0personne en attente',
    'lobby.waiting.other': '{n}\u00a0personnes en attente',
    'lobby.admit': 'Admettre',
    'lobby.deny': 'Refuser',
    'lobby.admit.name': 'Admettre {name}',
    'lobby.deny.name': 'Refuser l’entrée à {name}',
    'lobby.admit.all': 'Tout admettre',
    'lobby.deny.all': 'Tout refuser',
    'lobby.notify.one': '{name} demande à participer',
    'lobby.notify.other': '{n}\u00a0personnes demandent à participer',
    'lobby.view': 'Voir',
    'host.title': 'Commandes de l’organisateur',
    'lock.label': 'Verrouiller la réunion',
    'lock.hint': 'Tant que la réunion est verrouillée, tout le monde sauf les organisateurs attend qu’on le fasse entrer.',
    'room.locked': 'Verrouillée',
    'notify.locked': 'La réunion est verrouillée\u00a0: les nouveaux venus attendent qu’on les fasse entrer.',
    'notify.unlocked': 'La réunion est déverrouillée.',
    'moderate.mute': 'Couper le micro de {name}',
    'moderate.camera_off': 'Désactiver la caméra de {name}',
    'moderate.stop_screen': 'Arrêter la présentation de {name}',
    'moderate.remove': 'Retirer {name} de la réunion',
    'moderate.remove.confirm': 'Retirer {name} de la réunion\u00a0? Cette personne ne pourra revenir que si un organisateur la fait entrer.',
    'moderate.remove.ok': 'Retirer',
    'moderate.mute_all': 'Couper le micro de tous',
    'moderate.mute_all.done': 'Le micro de tous, sauf des organisateurs, est coupé.',
    'moderate.end': 'Terminer pour tous',
    'moderate.end.title': 'Mettre fin à la réunion pour tous',
    'moderate.end.confirm': 'Mettre fin à la réunion pour tous\u00a0? Toutes les personnes présentes ou en attente seront déconnectées.',
    'moderate.end.ok': 'Mettre fin à la réunion',
    'moderate.actions': 'Actions pour {name}',
    'moderated.mute': '{name} a coupé votre micro. Réactivez-le quand vous voulez parler.',
    'moderated.camera_off': '{name} a désactivé votre caméra.',
    'moderated.stop_screen': '{name} a arrêté votre présentation.',
    'moderated.someone': 'Un organisateur',
    'confirm.cancel': 'Annuler',
    'error.forbidden': 'Seuls les organisateurs peuvent faire cela.',
    'error.not_found': 'Cette personne n’est plus là.',
    'left.title.denied': 'Votre demande a été refusée',
    'left.denied': 'Une personne de la réunion a refusé votre demande de participation.',
    'left.title.lobby_expired': 'Personne ne vous a fait entrer',
    'left.lobby_expired': 'Personne n’a répondu à temps à votre demande de participation. Vous pouvez la renouveler.',
    'left.title.removed': 'Vous avez été retiré de la réunion',
    'left.removed': 'Un organisateur vous a retiré de cette réunion.',
    'left.title.ended': 'La réunion est terminée',
    'left.ended': 'Il a été mis fin à la réunion.',
    'left.ended.by': '{name} a mis fin à la réunion pour tous.',
    'left.ended.you': 'Vous avez mis fin à la réunion pour tous.',
    'left.ask': 'Redemander à participer',
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
  return t(pluralKey(key, n), { n, ...vars });
}

export function pluralKey(key, n) {
  const category = new Intl.PluralRules(current).select(n);
  return STRINGS[current][`${key}.${category}`] ? `${key}.${category}` : `${key}.other`;
}

const ATTRIBUTES = [
  ['data-i18n-label', 'aria-label'],
  ['data-i18n-title', 'title'],
  ['data-i18n-placeholder', 'placeholder'],
];

export function translate(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n, varsOf(el));
  for (const [source, target] of ATTRIBUTES) {
    for (const el of root.querySelectorAll(`[${source}]`)) el.setAttribute(target, t(el.getAttribute(source)));
  }
}

// Values for a tagged element's placeholders: data-i18n-vars='{"name": "Alice"}'.
function varsOf(el) {
  try {
    return el.dataset.i18nVars ? JSON.parse(el.dataset.i18nVars) : {};
  } catch {
    return {};
  }
}

// Tag an element with a string (and its values) so that a change of language retranslates it.
export function setText(el, key, vars = null) {
  if (!key) {
    delete el.dataset.i18n;
    delete el.dataset.i18nVars;
    el.textContent = '';
    return;
  }
  el.dataset.i18n = key;
  if (vars) el.dataset.i18nVars = JSON.stringify(vars);
  else delete el.dataset.i18nVars;
  el.textContent = t(key, vars || {});
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
