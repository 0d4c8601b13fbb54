// The folder helpers moved to the core (the gallery enrols from folders too); kept here for the commands.
export { imagesBelow, imagesIn, isImageFile, peopleFolders } from '../image/files';
