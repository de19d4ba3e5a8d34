// The page's fixed elements, by name. Module scripts run after the document is parsed.
import { $ } from './util.js';

export var dom = {
  layout: $('layout'), conn: $('conn'), connDetail: $('conn-detail'), reconnect: $('reconnect'),
  version: $('version'), baseTopic: $('base-topic'), bridges: $('bridges'), health: $('health'),
  phones: $('phones'), phonesEmpty: $('phones-empty'), phoneCount: $('phone-count'), search: $('search'),
  table: $('phones-table'), thead: document.querySelector('#phones-table thead'),
  filterVendor: $('filter-vendor'), filterGroup: $('filter-group'), filterOnline: $('filter-online'),
  filterIncall: $('filter-incall'), filterDnd: $('filter-dnd'), filterClear: $('filter-clear'),
  selectAll: $('select-all'), selectGroup: $('select-group'), selectNone: $('select-none'), selectedCount: $('selected-count'),
  bulk: $('bulk'), bulkText: $('bulk-text'), bulkAt: $('bulk-at'), bulkIn: $('bulk-in'), bulkNote: $('bulk-note'),
  bulkStatus: $('bulk-status'), bulkTitle: $('bulk-title'), bulkProgress: $('bulk-progress'),
  bulkResults: $('bulk-results'), bulkDismiss: $('bulk-dismiss'),
  detail: $('detail'), detailTitle: $('detail-title'), detailSub: $('detail-sub'), detailSubscriber: $('detail-subscriber'),
  detailClose: $('detail-close'),
  detailInfo: $('detail-info'), detailNotice: $('detail-notice'), cmds: $('detail-commands'),
  results: $('detail-results'), resultsEmpty: $('detail-results-empty'),
  events: $('detail-events'), eventsEmpty: $('detail-events-empty'),
  log: $('log'), logEmpty: $('log-empty'), logCount: $('log-count'), logFilter: $('log-filter'),
  logClear: $('log-clear'), pause: $('pause'), pauseCount: $('pause-count'),
  remTarget: $('reminder-target'), remText: $('reminder-text'), remAt: $('reminder-at'), remIn: $('reminder-in'),
  remAdd: $('reminder-add'), remStatus: $('reminder-status'), remList: $('reminder-list'),
  remEmpty: $('reminders-empty'), remCount: $('reminder-count'),
  dirFile: $('directory-file'), dirImport: $('directory-import'), dirResult: $('directory-result'),
  dirCount: $('directory-count'), dirFilter: $('directory-filter'), subList: $('subscriber-list'),
  subCount: $('subscriber-count'), dirEmpty: $('directory-empty'),
  noSub: $('no-subscriber'), noSubCount: $('no-subscriber-count'), noPhone: $('no-phone'), noPhoneCount: $('no-phone-count')
};
