// The lifecycle dialogs of the alarm page: which one is open, and the limits on attached pictures.
export type AlarmDialog = '' | 'confirm' | 'reject' | 'dispose' | 'clear' | 'close' | 'sample'

export const MAX_PHOTOS = 4
export const MAX_PHOTO_BYTES = 1024 * 1024

/** Which lifecycle actions the alarm's status and verdict allow (the API enforces the same). */
export function allowedActions(status: string, verdict: string | null) {
  return {
    confirm: verdict === null && !['rejected', 'closed'].includes(status),
    reject: verdict === null && ['raised', 'cleared'].includes(status),
    dispose: verdict === 'true_positive' && !['rejected', 'closed'].includes(status),
    clear: ['raised', 'confirmed', 'disposed'].includes(status),
    close: ['cleared', 'rejected'].includes(status) && verdict !== null,
  }
}
